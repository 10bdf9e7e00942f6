// xenemu_sock: non-blocking socket I/O and a spin that waits for a request, for a daemon that
// answers one request at a time to a client waiting for it (xenstored).
//
// Why an addon: after a reply, the next request of a libxenstore client comes
// a few microseconds later. Through Node's event loop a request costs a
// libuv loop turn, an epoll_wait, the stream machinery for the read and for
// the write; waiting for it in epoll costs a CPU wake-up. Here the daemon
// waits for it in a short spin on the few sockets it has just answered, and
// reads and answers on the socket's descriptor directly. libuv keeps owning
// the descriptors: whatever this does not take (end of file, errors, data
// outside the spin) libuv sees as before.
//
//   spinRecv(fds: Int32Array, buf, budgetUs, yieldCpu, out: Int32Array, frame: Int32Array) -> bytes
//                            recv(MSG_DONTWAIT) on each fd in turn until one
//                            returns something or the budget runs out: the
//                            request is read by the system call that notices
//                            it. sched_yield(2) between rounds when yieldCpu:
//                            a client on this same CPU gets it at once
//                            instead of after the spin. out[0] is the fd's
//                            index; returns > 0 data, 0 end of file, -errno,
//                            -EAGAIN when the budget ran out.
//                            frame = [headerSize, lenOffset, maxLen, waitUs]
//                            describes length-prefixed frames (a 32-bit
//                            little-endian payload length in the header):
//                            once data came, the same fd is read on, without
//                            yielding, until the data ends on a frame
//                            boundary or waitUs have passed, so that a
//                            request its client writes in pieces
//                            (libxenstore: header, then each part of the
//                            payload) comes back whole from one call.
//                            waitUs 0 turns that off. A bad argument is
//                            -EINVAL.
//   send(fd, buf) -> bytes   send(MSG_DONTWAIT | MSG_NOSIGNAL), -errno
#include <node.h>
#include <node_buffer.h>
#include <v8.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <cerrno>
#include <cstdint>

namespace {

using v8::Context;
using v8::FunctionCallbackInfo;
using v8::Int32Array;
using v8::Isolate;
using v8::Local;
using v8::String;
using v8::Value;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// How a stream is cut into frames (spinRecv's `frame` argument).
struct FrameSpec {
  size_t hdr;        // header bytes, >= 4
  size_t at;         // offset of the 32-bit little-endian payload length, <= hdr - 4
  size_t max;        // largest valid payload
  int64_t wait_ns;   // how long to read on for the rest of a frame; 0: not at all
};

// Does data[0, got) end on a frame boundary? Also true when it cannot
// (a length over max is the caller's to refuse; a full buffer), so that
// nothing waits for bytes a valid frame would not have or that would not fit.
bool FrameEnds(const uint8_t* data, size_t got, size_t cap, const FrameSpec& f) {
  const size_t hdr = f.hdr, at = f.at, max = f.max;
  size_t off = 0;
  while (got - off >= hdr) {
    const uint8_t* p = data + off + at;
    const size_t len = size_t(p[0]) | size_t(p[1]) << 8 | size_t(p[2]) << 16 | size_t(p[3]) << 24;
    if (len > max) return true;
    if (got - off < hdr + len) break;
    off += hdr + len;
  }
  return off == got || got == cap;
}

void SpinRecv(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> ctx = isolate->GetCurrentContext();
  if (!args[0]->IsInt32Array() || !node::Buffer::HasInstance(args[1]) || node::Buffer::Length(args[1]) == 0 ||
      !args[4]->IsInt32Array() || args[4].As<Int32Array>()->Length() < 1 ||
      !args[5]->IsInt32Array() || args[5].As<Int32Array>()->Length() != 4) {
    args.GetReturnValue().Set(-EINVAL);
    return;
  }
  Local<Int32Array> arr = args[0].As<Int32Array>();
  const size_t n = arr->Length();
  const int32_t* fds = reinterpret_cast<const int32_t*>(
      static_cast<const char*>(arr->Buffer()->Data()) + arr->ByteOffset());
  uint8_t* data = reinterpret_cast<uint8_t*>(node::Buffer::Data(args[1]));
  const size_t cap = node::Buffer::Length(args[1]);
  const int64_t budget = int64_t(args[2]->NumberValue(ctx).FromMaybe(0) * 1000);
  const bool yield_cpu = args[3]->BooleanValue(isolate);
  Local<Int32Array> out_arr = args[4].As<Int32Array>();
  int32_t* out = reinterpret_cast<int32_t*>(
      static_cast<char*>(out_arr->Buffer()->Data()) + out_arr->ByteOffset());
  // Copied before it is checked: nothing the caller does later changes it.
  int32_t frame[4];
  args[5].As<Int32Array>()->CopyContents(frame, sizeof frame);
  if (frame[0] < 4 || frame[1] < 0 || frame[1] > frame[0] - 4 || frame[2] < 0 || frame[3] < 0) {
    args.GetReturnValue().Set(-EINVAL);
    return;
  }
  const FrameSpec spec = {size_t(frame[0]), size_t(frame[1]), size_t(frame[2]), int64_t(frame[3]) * 1000};
  const int64_t end = NowNs() + budget;
  for (;;) {
    for (size_t i = 0; i < n; i++) {
      ssize_t r = recv(fds[i], data, cap, MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      out[0] = int32_t(i);
      if (r <= 0) {
        args.GetReturnValue().Set(r < 0 ? -errno : 0);
        return;
      }
      // The rest of a frame that came in pieces, for at most wait_ns
      // however it trickles in. An end of file here is seen again by the
      // next read; an error (ECONNRESET) is reported once, so the next read
      // sees end of file: the connection ends either way.
      size_t got = size_t(r);
      if (spec.wait_ns > 0 && !FrameEnds(data, got, cap, spec)) {
        const int64_t frame_end = NowNs() + spec.wait_ns;
        do {
          r = recv(fds[i], data + got, cap - got, MSG_DONTWAIT);
          if (r > 0) got += size_t(r);
          else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
        } while (!FrameEnds(data, got, cap, spec) && NowNs() < frame_end);
      }
      args.GetReturnValue().Set(int32_t(got));
      return;
    }
    if (NowNs() >= end) break;
    if (yield_cpu) sched_yield();
  }
  args.GetReturnValue().Set(-EAGAIN);
}

void Send(const FunctionCallbackInfo<Value>& args) {
  Local<Context> ctx = args.GetIsolate()->GetCurrentContext();
  const int fd = args[0]->Int32Value(ctx).FromMaybe(-1);
  if (!node::Buffer::HasInstance(args[1])) {
    args.GetReturnValue().Set(-EINVAL);
    return;
  }
  const char* data = node::Buffer::Data(args[1]);
  const size_t len = node::Buffer::Length(args[1]);
  ssize_t r;
  do r = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
  args.GetReturnValue().Set(r < 0 ? -errno : int32_t(r));
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  Isolate* isolate = context->GetIsolate();
  exports->Set(context, String::NewFromUtf8(isolate, "spinRecv").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, SpinRecv)->GetFunction(context).ToLocalChecked()).Check();
  exports->Set(context, String::NewFromUtf8(isolate, "send").ToLocalChecked(),
               v8::FunctionTemplate::New(isolate, Send)->GetFunction(context).ToLocalChecked()).Check();
}
