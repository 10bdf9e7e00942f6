// xenemu_shm: POSIX shared memory as a SharedArrayBuffer.
//
// Why an addon of our own: no npm package maps POSIX shm as a *shared*
// backing store that worker threads can receive and Atomics can work on
// (see docs/design.md §3). This one is context-aware (NODE_MODULE_INIT), so
// it loads in worker threads too.
//
//   open(name, size, create[, offset]) -> SharedArrayBuffer
//                            shm_open + ftruncate + mmap; offset (page
//                            aligned) maps one window, e.g. a single guest
//                            page, without mapping the whole segment
//   unlink(name)             -> boolean             shm_unlink, false if absent
//   release(sab, off, len[, keepData])
//                            -> boolean             madvise(MADV_REMOVE): give pages back;
//                            with keepData, MADV_DONTNEED: unmap them from this process only
//   punchHole(fd, off, len)  -> boolean             fallocate(PUNCH_HOLE|KEEP_SIZE) on a file
//                            (blkback's BLKIF_OP_DISCARD; Node has no fallocate)
//   mapInto(ab, off, name, len[, segOff])
//                            -> true               mmap(MAP_FIXED|MAP_SHARED) a segment window
//                            over [off, off+len) of an ArrayBuffer's memory: an HVM guest's
//                            RAM inside v86's WebAssembly.Memory *is* the domain's segment
//   mapFile(fd, offset, length) -> SharedArrayBuffer
//                            mmap(MAP_SHARED) of [offset, offset+length) of an open
//                            regular file (offset page aligned): stores into it are the
//                            file's page cache at once, with no system call (xenstored's
//                            log, processes/dom0/xenstored/persist.ts)
//   futexWait(sab, byteOff, expected, timeoutMs)
//                            -> 'ok' | 'not-equal' | 'timed-out'   FUTEX_WAIT on a shared
//                            (not private) word, so another process's futexWake reaches it
//   futexWake(sab, byteOff, count) -> woken
//
// Atomics.wait/notify cannot do the last two: V8 keeps its own wait lists per
// process, so a notify never crosses into another process mapping the same
// segment. The ioreq path between an HVM vCPU and its qemu-dm needs exactly
// that, in microseconds.
//
// The mapping lives as long as the SharedArrayBuffer's backing store: V8 calls
// the deleter when the last reference (in any thread) goes, and it unmaps.
#include <node.h>
#include <v8.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <ctime>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace {

using v8::ArrayBuffer;
using v8::BackingStore;
using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

void Throw(Isolate* isolate, const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  Local<Value> e = Exception::Error(String::NewFromUtf8(isolate, msg.c_str()).ToLocalChecked());
  Local<Context> ctx = isolate->GetCurrentContext();
  const char* code = err == ENOENT ? "ENOENT" : err == EEXIST ? "EEXIST" : err == ENOMEM ? "ENOMEM" : "EIO";
  e.As<Object>()->Set(ctx, String::NewFromUtf8(isolate, "code").ToLocalChecked(),
                      String::NewFromUtf8(isolate, code).ToLocalChecked()).Check();
  e.As<Object>()->Set(ctx, String::NewFromUtf8(isolate, "errno").ToLocalChecked(),
                      v8::Integer::New(isolate, err)).Check();
  isolate->ThrowException(e);
}

void Unmap(void* data, size_t length, void* /*deleter_data*/) {
  if (data != nullptr && length > 0) munmap(data, length);
}

// open(name: string, size: number, create: boolean): SharedArrayBuffer
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 3 || !args[0]->IsString() || !args[1]->IsNumber()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "open(name, size, create)").ToLocalChecked()));
    return;
  }
  String::Utf8Value name(isolate, args[0]);
  double dsize = args[1]->NumberValue(ctx).FromJust();
  bool create = args[2]->BooleanValue(isolate);
  double doff = args.Length() > 3 && args[3]->IsNumber() ? args[3]->NumberValue(ctx).FromJust() : 0;
  if (doff < 0 || static_cast<long>(doff) % sysconf(_SC_PAGESIZE) != 0 || (create && doff != 0)) {
    isolate->ThrowException(Exception::RangeError(
        String::NewFromUtf8(isolate, "shm offset must be a page multiple (and 0 on create)").ToLocalChecked()));
    return;
  }
  off_t offset = static_cast<off_t>(doff);
  if (dsize <= 0 || dsize > 64.0 * 1024 * 1024 * 1024) {
    isolate->ThrowException(Exception::RangeError(
        String::NewFromUtf8(isolate, "shm size out of range").ToLocalChecked()));
    return;
  }
  size_t size = static_cast<size_t>(dsize);
  int flags = O_RDWR | (create ? (O_CREAT | O_EXCL) : 0);
  int fd = shm_open(*name, flags, 0600);
  if (fd < 0) { Throw(isolate, std::string("shm_open ") + *name, errno); return; }
  if (create && ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(*name);
    Throw(isolate, std::string("ftruncate ") + *name, err);
    return;
  }
  if (!create) {
    struct stat st;
    if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < size + static_cast<size_t>(offset)) {
      int err = errno ? errno : EINVAL;
      close(fd);
      Throw(isolate, std::string("shm segment smaller than asked: ") + *name, err);
      return;
    }
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  int err = errno;
  close(fd);  // the mapping keeps the segment alive
  if (p == MAP_FAILED) { Throw(isolate, std::string("mmap ") + *name, err); return; }
  std::unique_ptr<BackingStore> store = SharedArrayBuffer::NewBackingStore(p, size, Unmap, nullptr);
  args.GetReturnValue().Set(SharedArrayBuffer::New(isolate, std::move(store)));
}

// mapFile(fd: number, offset: number, length: number): SharedArrayBuffer
void MapFile(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 3 || !args[0]->IsInt32() || !args[1]->IsNumber() || !args[2]->IsNumber()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "mapFile(fd, offset, length)").ToLocalChecked()));
    return;
  }
  const int fd = args[0]->Int32Value(ctx).FromJust();
  const double doff = args[1]->NumberValue(ctx).FromJust();
  const double dlen = args[2]->NumberValue(ctx).FromJust();
  if (doff < 0 || static_cast<long>(doff) % sysconf(_SC_PAGESIZE) != 0 || dlen <= 0 || dlen > 64.0 * 1024 * 1024 * 1024) {
    isolate->ThrowException(Exception::RangeError(
        String::NewFromUtf8(isolate, "mapFile: offset must be a page multiple, length > 0").ToLocalChecked()));
    return;
  }
  const size_t len = static_cast<size_t>(dlen);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(doff));
  if (p == MAP_FAILED) { Throw(isolate, "mmap", errno); return; }
  std::unique_ptr<BackingStore> store = SharedArrayBuffer::NewBackingStore(p, len, Unmap, nullptr);
  args.GetReturnValue().Set(SharedArrayBuffer::New(isolate, std::move(store)));
}

// unlink(name: string): boolean
void Unlink(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsString()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "unlink(name)").ToLocalChecked()));
    return;
  }
  String::Utf8Value name(isolate, args[0]);
  if (shm_unlink(*name) == 0) { args.GetReturnValue().Set(true); return; }
  if (errno == ENOENT) { args.GetReturnValue().Set(false); return; }
  Throw(isolate, std::string("shm_unlink ") + *name, errno);
}

// release(sab: SharedArrayBuffer, offset: number, length: number): boolean
// Frees the backing pages of a range of a mapped segment (tmpfs punches a hole;
// the range reads as zeros afterwards): how a ballooned-out frame goes back to
// the host. offset and length must be page-aligned.
void Release(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 3 || !args[0]->IsSharedArrayBuffer() || !args[1]->IsNumber() || !args[2]->IsNumber()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "release(sab, offset, length)").ToLocalChecked()));
    return;
  }
  std::shared_ptr<BackingStore> store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  double off = args[1]->NumberValue(ctx).FromJust();
  double len = args[2]->NumberValue(ctx).FromJust();
  long page = sysconf(_SC_PAGESIZE);
  if (off < 0 || len <= 0 || off + len > static_cast<double>(store->ByteLength()) ||
      static_cast<size_t>(off) % page != 0 || static_cast<size_t>(len) % page != 0) {
    args.GetReturnValue().Set(false);
    return;
  }
  char* base = static_cast<char*>(store->Data()) + static_cast<size_t>(off);
  // keepData: only this process's page table entries go (MADV_DONTNEED);
  // a shared file mapping's data stays in the file (mapFile).
  const bool keep_data = args.Length() > 3 && args[3]->BooleanValue(isolate);
  args.GetReturnValue().Set(madvise(base, static_cast<size_t>(len), keep_data ? MADV_DONTNEED : MADV_REMOVE) == 0);
}

// punchHole(fd: number, offset: number, length: number): boolean
void PunchHole(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 3 || !args[0]->IsNumber() || !args[1]->IsNumber() || !args[2]->IsNumber()) {
    args.GetReturnValue().Set(false);
    return;
  }
  int fd = static_cast<int>(args[0]->NumberValue(ctx).FromJust());
  double off = args[1]->NumberValue(ctx).FromJust();
  double len = args[2]->NumberValue(ctx).FromJust();
  if (fd < 0 || off < 0 || len <= 0) { args.GetReturnValue().Set(false); return; }
  int rc = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len));
  args.GetReturnValue().Set(rc == 0);
}

// mapInto(buf: ArrayBuffer, offset: number, name: string, length: number, segOffset?: number): true
// The ArrayBuffer must outlive the use of the mapping; replacing its pages
// is safe because the range stays mapped (now to the segment) at the same
// addresses, so code holding pointers into it (wasm, typed arrays) sees the
// segment's bytes from then on.
void MapInto(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 4 || !args[0]->IsArrayBuffer() || !args[1]->IsNumber() || !args[2]->IsString() ||
      !args[3]->IsNumber()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "mapInto(arrayBuffer, offset, name, length[, segOffset])").ToLocalChecked()));
    return;
  }
  std::shared_ptr<BackingStore> store = args[0].As<ArrayBuffer>()->GetBackingStore();
  double off = args[1]->NumberValue(ctx).FromJust();
  String::Utf8Value name(isolate, args[2]);
  double len = args[3]->NumberValue(ctx).FromJust();
  double segOff = args.Length() > 4 && args[4]->IsNumber() ? args[4]->NumberValue(ctx).FromJust() : 0;
  long page = sysconf(_SC_PAGESIZE);
  if (off < 0 || len <= 0 || segOff < 0 || off + len > static_cast<double>(store->ByteLength()) ||
      static_cast<size_t>(off) % page != 0 || static_cast<size_t>(len) % page != 0 ||
      static_cast<size_t>(segOff) % page != 0) {
    isolate->ThrowException(Exception::RangeError(
        String::NewFromUtf8(isolate, "mapInto: page-aligned range inside the buffer").ToLocalChecked()));
    return;
  }
  int fd = shm_open(*name, O_RDWR, 0600);
  if (fd < 0) { Throw(isolate, std::string("shm_open ") + *name, errno); return; }
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<double>(st.st_size) < segOff + len) {
    close(fd);
    Throw(isolate, std::string("shm segment smaller than asked: ") + *name, EINVAL);
    return;
  }
  void* want = static_cast<char*>(store->Data()) + static_cast<size_t>(off);
  void* p = mmap(want, static_cast<size_t>(len), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                 static_cast<off_t>(segOff));
  int err = errno;
  close(fd);
  if (p != want) { Throw(isolate, std::string("mmap over buffer ") + *name, p == MAP_FAILED ? err : EFAULT); return; }
  args.GetReturnValue().Set(true);
}

int* FutexWord(Isolate* isolate, const FunctionCallbackInfo<Value>& args) {
  Local<Context> ctx = isolate->GetCurrentContext();
  if (args.Length() < 2 || !args[0]->IsSharedArrayBuffer() || !args[1]->IsNumber()) {
    isolate->ThrowException(Exception::TypeError(
        String::NewFromUtf8(isolate, "futex(sab, byteOffset, ...)").ToLocalChecked()));
    return nullptr;
  }
  std::shared_ptr<BackingStore> store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  double off = args[1]->NumberValue(ctx).FromJust();
  if (off < 0 || static_cast<size_t>(off) % 4 != 0 || off + 4 > static_cast<double>(store->ByteLength())) {
    isolate->ThrowException(Exception::RangeError(
        String::NewFromUtf8(isolate, "futex: aligned word inside the buffer").ToLocalChecked()));
    return nullptr;
  }
  return reinterpret_cast<int*>(static_cast<char*>(store->Data()) + static_cast<size_t>(off));
}

// futexWait(sab, byteOffset, expected, timeoutMs): 'ok' | 'not-equal' | 'timed-out'
// A negative timeout waits for ever. EINTR counts as 'ok' (a spurious wake:
// callers re-check their condition in a loop anyway).
void FutexWait(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  int* word = FutexWord(isolate, args);
  if (!word) return;
  int expected = args.Length() > 2 ? args[2]->Int32Value(ctx).FromMaybe(0) : 0;
  double ms = args.Length() > 3 && args[3]->IsNumber() ? args[3]->NumberValue(ctx).FromJust() : -1;
  struct timespec ts;
  struct timespec* tp = nullptr;
  if (ms >= 0) {
    ts.tv_sec = static_cast<time_t>(ms / 1000);
    ts.tv_nsec = static_cast<long>((ms - static_cast<double>(ts.tv_sec) * 1000) * 1e6);
    tp = &ts;
  }
  long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tp, nullptr, 0);
  const char* out = r == 0 || errno == EINTR ? "ok" : errno == EAGAIN ? "not-equal" : errno == ETIMEDOUT ? "timed-out" : "ok";
  args.GetReturnValue().Set(String::NewFromUtf8(isolate, out).ToLocalChecked());
}

// futexWake(sab, byteOffset, count): number of waiters woken
void FutexWake(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  int* word = FutexWord(isolate, args);
  if (!word) return;
  int count = args.Length() > 2 ? args[2]->Int32Value(ctx).FromMaybe(1) : 1;
  long r = syscall(SYS_futex, word, FUTEX_WAKE, count < 1 ? 1 : count, nullptr, nullptr, 0);
  args.GetReturnValue().Set(v8::Number::New(isolate, r < 0 ? 0 : static_cast<double>(r)));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports->Set(context, String::NewFromUtf8(isolate, "open").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Open)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "mapFile").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, MapFile)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "unlink").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Unlink)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "release").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Release)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "punchHole").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, PunchHole)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "mapInto").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, MapInto)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "futexWait").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, FutexWait)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "futexWake").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, FutexWake)->GetFunction(context).ToLocalChecked()).Check();
}
