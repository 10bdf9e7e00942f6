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
//   release(sab, off, len)   -> boolean             madvise(MADV_REMOVE): give pages back
//   punchHole(fd, off, len)  -> boolean             fallocate(PUNCH_HOLE|KEEP_SIZE) on a file
//                            (blkback's BLKIF_OP_DISCARD; Node has no fallocate)
//
// The mapping lives as long as the SharedArrayBuffer's backing store: V8 calls
// the deleter when the last reference (in any thread) goes, and it unmaps.
#include <node.h>
#include <v8.h>
#include <fcntl.h>
#include <linux/falloc.h>
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
  args.GetReturnValue().Set(madvise(base, static_cast<size_t>(len), MADV_REMOVE) == 0);
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

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports->Set(context, String::NewFromUtf8(isolate, "open").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Open)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "unlink").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Unlink)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "release").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Release)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "punchHole").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, PunchHole)->GetFunction(context).ToLocalChecked()).Check();
}
