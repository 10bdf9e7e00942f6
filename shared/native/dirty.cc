// xenemu_dirty: which pages of a guest's memory segment hold data, and which
// the guest wrote since the last look (Xen's log-dirty mode,
// XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY / _CLEAN), for live migration
// (processes/dom0/xend/migration.ts, docs/saverestore.md).
//
//   dataExtents(name) -> number[]   [start, end, start, end, ...] byte ranges of the
//                                   shm segment that hold pages (lseek SEEK_DATA /
//                                   SEEK_HOLE on tmpfs): a hole was never written and
//                                   reads as zeros, the unpopulated frames libxc sends
//                                   as XEN_DOMCTL_PFINFO_XTAB, without data
//   wpRegister(sab) -> fd           in the process that writes the guest's memory (the
//                                   domain process): a userfaultfd in asynchronous
//                                   write-protect mode (UFFD_FEATURE_WP_ASYNC) over the
//                                   whole mapping. Nothing is protected yet, so it costs
//                                   nothing until a tracker protects it; a write to a
//                                   protected page then faults once, and the kernel
//                                   itself lifts the protection and marks the page
//                                   written (no handler thread, no round trip)
//   wpScan(pid, addr, len, out) -> n
//                                   in the tracker (xend): PAGEMAP_SCAN on
//                                   /proc/PID/pagemap over [addr, addr+len) of that
//                                   process's mapping, reporting the pages written since
//                                   the last scan (page indices into `out`, a
//                                   Uint32Array) and protecting them again in the same
//                                   walk, atomically: a write after a page was reported
//                                   shows in the next scan
//
// userfaultfd write-protection is a property of a mapping (a VMA), not of the
// pages: only writes through the registered process's mapping are seen. Why
// the tracker still compares pages at the stop: docs/saverestore.md.
#include <node.h>
#include <v8.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// Linux 6.7's uapi (linux/userfaultfd.h, linux/fs.h), absent from older headers.
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef PAGEMAP_SCAN
struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WRITTEN (1 << 1)
#endif

namespace {

using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

void Throw(Isolate* isolate, const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  Local<Value> e = Exception::Error(String::NewFromUtf8(isolate, msg.c_str()).ToLocalChecked());
  Local<Context> ctx = isolate->GetCurrentContext();
  e.As<Object>()->Set(ctx, String::NewFromUtf8(isolate, "errno").ToLocalChecked(), v8::Integer::New(isolate, err)).Check();
  isolate->ThrowException(e);
}

// dataExtents(name: string): number[]
void DataExtents(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 1 || !args[0]->IsString()) {
    isolate->ThrowException(Exception::TypeError(String::NewFromUtf8(isolate, "dataExtents(name)").ToLocalChecked()));
    return;
  }
  String::Utf8Value name(isolate, args[0]);
  int fd = shm_open(*name, O_RDONLY, 0);
  if (fd < 0) { Throw(isolate, std::string("shm_open ") + *name, errno); return; }
  struct stat st;
  if (fstat(fd, &st) != 0) { int err = errno; close(fd); Throw(isolate, "fstat", err); return; }
  std::vector<double> out;
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no data from here on
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    out.push_back(static_cast<double>(data));
    out.push_back(static_cast<double>(hole));
    pos = hole;
  }
  close(fd);
  Local<v8::Array> a = v8::Array::New(isolate, static_cast<int>(out.size()));
  for (size_t i = 0; i < out.size(); i++) a->Set(ctx, static_cast<uint32_t>(i), v8::Number::New(isolate, out[i])).Check();
  args.GetReturnValue().Set(a);
}

// wpRegister(sab: SharedArrayBuffer): number (the userfaultfd, kept open for the process's life)
void WpRegister(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsSharedArrayBuffer()) {
    isolate->ThrowException(Exception::TypeError(String::NewFromUtf8(isolate, "wpRegister(sab)").ToLocalChecked()));
    return;
  }
  std::shared_ptr<v8::BackingStore> store = args[0].As<v8::SharedArrayBuffer>()->GetBackingStore();
  // User-mode faults only: the guest's writes are all the process's own (a
  // kernel write through a registered range, e.g. read(2) into it, is not
  // tracked; xenemu's PV kernel never does that into guest memory).
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  if (fd < 0) { Throw(isolate, "userfaultfd", errno); return; }
  struct uffdio_api api;
  std::memset(&api, 0, sizeof api);
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (ioctl(fd, UFFDIO_API, &api) != 0) { int err = errno; close(fd); Throw(isolate, "UFFDIO_API (WP_ASYNC on shmem)", err); return; }
  struct uffdio_register reg;
  std::memset(&reg, 0, sizeof reg);
  reg.range.start = reinterpret_cast<uintptr_t>(store->Data());
  reg.range.len = store->ByteLength();
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) { int err = errno; close(fd); Throw(isolate, "UFFDIO_REGISTER (MODE_WP)", err); return; }
  args.GetReturnValue().Set(v8::Integer::New(isolate, fd));
}

// wpScan(pid: number, addr: number, len: number, out: Uint32Array): number of pages written
void WpScan(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 4 || !args[0]->IsNumber() || !args[1]->IsNumber() || !args[2]->IsNumber() || !args[3]->IsUint32Array()) {
    isolate->ThrowException(Exception::TypeError(String::NewFromUtf8(isolate, "wpScan(pid, addr, len, out)").ToLocalChecked()));
    return;
  }
  int pid = args[0]->Int32Value(ctx).FromJust();
  uint64_t addr = static_cast<uint64_t>(args[1]->NumberValue(ctx).FromJust());
  uint64_t len = static_cast<uint64_t>(args[2]->NumberValue(ctx).FromJust());
  Local<v8::Uint32Array> outArr = args[3].As<v8::Uint32Array>();
  uint32_t* out = reinterpret_cast<uint32_t*>(static_cast<char*>(outArr->Buffer()->Data()) + outArr->ByteOffset());
  size_t outLen = outArr->Length();
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { Throw(isolate, std::string("open ") + path, errno); return; }
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<page_region> vec(1024);
  size_t n = 0;
  uint64_t at = addr;
  const uint64_t end = addr + len;
  while (at < end) {
    struct pm_scan_arg a;
    std::memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    a.start = at;
    a.end = end;
    a.vec = reinterpret_cast<uintptr_t>(vec.data());
    a.vec_len = vec.size();
    a.category_mask = PAGE_IS_WRITTEN;
    a.return_mask = PAGE_IS_WRITTEN;
    long r = ioctl(fd, PAGEMAP_SCAN, &a);
    if (r < 0) { int err = errno; close(fd); Throw(isolate, "PAGEMAP_SCAN", err); return; }
    for (long i = 0; i < r; i++) {
      for (uint64_t p = vec[i].start; p < vec[i].end; p += page) {
        if (n >= outLen) { close(fd); Throw(isolate, "wpScan: out is too small", ENOSPC); return; }
        out[n++] = static_cast<uint32_t>((p - addr) / page);
      }
    }
    if (a.walk_end <= at) break;
    at = a.walk_end;
  }
  close(fd);
  args.GetReturnValue().Set(v8::Number::New(isolate, static_cast<double>(n)));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports->Set(context, String::NewFromUtf8(isolate, "dataExtents").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, DataExtents)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "wpRegister").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, WpRegister)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "wpScan").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, WpScan)->GetFunction(context).ToLocalChecked()).Check();
}
