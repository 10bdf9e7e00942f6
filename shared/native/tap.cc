// xenemu_net: TAP devices and network namespaces for a host's uplink
// (shared/net/tap.ts, shared/net/netns.ts; docs/net.md "Uplink").
//
//   tapOpen(name) -> [fd, name]     open("/dev/net/tun") + TUNSETIFF(IFF_TAP |
//                                   IFF_NO_PI) (linux/if_tun.h): a TAP named
//                                   `name` in the calling thread's network
//                                   namespace, non-persistent (it goes with
//                                   its last descriptor). The fd is
//                                   non-blocking and close-on-exec. Throws an
//                                   Error whose `code` is the errno name.
//   pollStart(fd, cb) -> handle     a libuv poll on the fd in Node's own
//                                   loop: when it is readable, frames are
//                                   read (read(2), one frame per call) until
//                                   EAGAIN, at most 64 per wake-up, and each
//                                   is cb(Buffer); a read error is cb(null,
//                                   -errno) and stops the poll.
//   pollStop(handle)                stops it (idempotent).
//   write(fd, buf) -> n | -errno    one frame (write(2), non-blocking).
//   close(fd)
//   netnsEnter(path) -> oldFd       setns(CLONE_NEWNET) of the calling thread
//                                   to the namespace file `path`
//                                   (/run/netns/NAME); returns a descriptor
//                                   of the thread's namespace before.
//   netnsRestore(oldFd)             back to it; closes oldFd.
//
// Why an addon: Node has no ioctl, no setns, and its streams take neither a
// character device (net.Socket refuses it) nor a non-blocking descriptor
// without polling it.
#include <node.h>
#include <node_buffer.h>
#include <uv.h>
#include <v8.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cerrno>

namespace {

using v8::Context;
using v8::Exception;
using v8::External;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

constexpr int kFrameMax = 65536;
constexpr int kBurst = 64;

void ThrowErrno(Isolate* iso, int err, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  Local<Value> e = Exception::Error(String::NewFromUtf8(iso, msg).ToLocalChecked());
  Local<Context> ctx = iso->GetCurrentContext();
  const char* name = err == ENOENT ? "ENOENT" : err == EPERM ? "EPERM" : err == EACCES ? "EACCES"
                   : err == EBUSY ? "EBUSY" : err == EINVAL ? "EINVAL" : err == ENODEV ? "ENODEV" : "EIO";
  e.As<Object>()->Set(ctx, String::NewFromUtf8Literal(iso, "code"), String::NewFromUtf8(iso, name).ToLocalChecked()).Check();
  e.As<Object>()->Set(ctx, String::NewFromUtf8Literal(iso, "errno"), Integer::New(iso, -err)).Check();
  iso->ThrowException(e);
}

void TapOpen(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsString()) {
    iso->ThrowException(Exception::TypeError(String::NewFromUtf8Literal(iso, "tapOpen(name)")));
    return;
  }
  String::Utf8Value name(iso, args[0]);
  if (name.length() >= IFNAMSIZ) { ThrowErrno(iso, EINVAL, "interface name longer than 15 bytes"); return; }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { ThrowErrno(iso, errno, "/dev/net/tun"); return; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, *name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(iso, err, "TUNSETIFF");
    return;
  }
  Local<Context> ctx = iso->GetCurrentContext();
  Local<v8::Array> out = v8::Array::New(iso, 2);
  out->Set(ctx, 0, Integer::New(iso, fd)).Check();
  out->Set(ctx, 1, String::NewFromUtf8(iso, ifr.ifr_name).ToLocalChecked()).Check();
  args.GetReturnValue().Set(out);
}

struct Poller {
  uv_poll_t handle;
  int fd;
  Isolate* iso;
  Global<Context> ctx;
  Global<Function> cb;
  bool stopped = false;
  char buf[kFrameMax];
};

void PollerClosed(uv_handle_t* h) { delete static_cast<Poller*>(h->data); }

void StopPoller(Poller* p) {
  if (p->stopped) return;
  p->stopped = true;
  uv_poll_stop(&p->handle);
  p->cb.Reset();
  p->ctx.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), PollerClosed);
}

void OnReadable(uv_poll_t* h, int status, int /*events*/) {
  Poller* p = static_cast<Poller*>(h->data);
  if (p->stopped) return;
  Isolate* iso = p->iso;
  HandleScope scope(iso);
  Local<Context> ctx = p->ctx.Get(iso);
  Context::Scope cscope(ctx);
  Local<Function> cb = p->cb.Get(iso);
  Local<Object> recv = ctx->Global();
  for (int i = 0; i < kBurst && !p->stopped; i++) {
    ssize_t n = status < 0 ? -1 : read(p->fd, p->buf, sizeof p->buf);
    if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
      Local<Value> argv[2] = { v8::Null(iso), Integer::New(iso, status < 0 ? status : -errno) };
      StopPoller(p);
      node::MakeCallback(iso, recv, cb, 2, argv, node::async_context{0, 0});
      return;
    }
    Local<Value> argv[1] = { node::Buffer::Copy(iso, p->buf, size_t(n)).ToLocalChecked() };
    node::MakeCallback(iso, recv, cb, 1, argv, node::async_context{0, 0});
  }
}

void PollStart(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 2 || !args[0]->IsInt32() || !args[1]->IsFunction()) {
    iso->ThrowException(Exception::TypeError(String::NewFromUtf8Literal(iso, "pollStart(fd, cb)")));
    return;
  }
  auto* p = new Poller();
  p->fd = args[0].As<Integer>()->Value();
  p->iso = iso;
  p->ctx.Reset(iso, iso->GetCurrentContext());
  p->cb.Reset(iso, args[1].As<Function>());
  p->handle.data = p;
  uv_loop_t* loop = node::GetCurrentEventLoop(iso);
  int r = uv_poll_init(loop, &p->handle, p->fd);
  if (r < 0) { p->cb.Reset(); p->ctx.Reset(); delete p; ThrowErrno(iso, -r, "uv_poll_init"); return; }
  r = uv_poll_start(&p->handle, UV_READABLE, OnReadable);
  if (r < 0) { p->stopped = true; uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), PollerClosed); ThrowErrno(iso, -r, "uv_poll_start"); return; }
  args.GetReturnValue().Set(External::New(iso, p));
}

void PollStop(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsExternal()) return;
  StopPoller(static_cast<Poller*>(args[0].As<External>()->Value()));
}

void Write(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 2 || !args[0]->IsInt32() || !args[1]->IsArrayBufferView()) {
    iso->ThrowException(Exception::TypeError(String::NewFromUtf8Literal(iso, "write(fd, buf)")));
    return;
  }
  int fd = args[0].As<Integer>()->Value();
  auto view = args[1].As<v8::ArrayBufferView>();
  const char* data = static_cast<const char*>(view->Buffer()->Data()) + view->ByteOffset();
  ssize_t n = write(fd, data, view->ByteLength());
  args.GetReturnValue().Set(Integer::New(iso, n < 0 ? -errno : int(n)));
}

void Close(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() >= 1 && args[0]->IsInt32()) close(args[0].As<Integer>()->Value());
}

void NetnsEnter(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsString()) {
    iso->ThrowException(Exception::TypeError(String::NewFromUtf8Literal(iso, "netnsEnter(path)")));
    return;
  }
  String::Utf8Value path(iso, args[0]);
  int old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (old < 0) { ThrowErrno(iso, errno, "/proc/thread-self/ns/net"); return; }
  int fd = open(*path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { int err = errno; close(old); ThrowErrno(iso, err, *path); return; }
  if (setns(fd, CLONE_NEWNET) < 0) { int err = errno; close(fd); close(old); ThrowErrno(iso, err, "setns"); return; }
  close(fd);
  args.GetReturnValue().Set(Integer::New(iso, old));
}

void NetnsRestore(const FunctionCallbackInfo<Value>& args) {
  Isolate* iso = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsInt32()) return;
  int old = args[0].As<Integer>()->Value();
  int r = setns(old, CLONE_NEWNET);
  int err = errno;
  close(old);
  if (r < 0) ThrowErrno(iso, err, "setns (restore)");
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "tapOpen", TapOpen);
  NODE_SET_METHOD(exports, "pollStart", PollStart);
  NODE_SET_METHOD(exports, "pollStop", PollStop);
  NODE_SET_METHOD(exports, "write", Write);
  NODE_SET_METHOD(exports, "close", Close);
  NODE_SET_METHOD(exports, "netnsEnter", NetnsEnter);
  NODE_SET_METHOD(exports, "netnsRestore", NetnsRestore);
}
