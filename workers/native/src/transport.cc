// rtp_transport: a per-thread native UDP media transport for rtp-bench (Linux only).
//
// One Transport object per JS thread owns:
//   - one connected, non-blocking UDP socket per leg, and one of two engines that move their datagrams:
//       io_uring (default where the kernel allows it): sends are IORING_OP_SEND entries submitted with ONE
//         io_uring_enter per sendBatch (issued inline: the payload is in the kernel when it returns); every socket has
//         one armed multishot IORING_OP_RECVMSG that lands datagrams (with their SO_TIMESTAMPNS control message)
//         straight into receive-arena slots registered as a provided buffer ring, so receiving costs no syscall per
//         datagram; when the buffers run out, receives end (ENOBUFS) and a drain re-arms them once JS has had the
//         ring. Needs Linux >= 6.0 and io_uring not blocked (seccomp profiles of Docker/containerd and
//         kernel.io_uring_disabled block it).
//       epoll (fallback, or engine: 'epoll'): an epoll fd holding every socket; sendBatch loops send(2); a drain
//         calls epoll_wait once and recvmmsg once per ready socket.
//   - one uv_poll_t watching the io_uring fd or the epoll fd from the thread's libuv loop;
//   - optionally a ticker: a periodic CLOCK_MONOTONIC timerfd watched by a second uv_poll_t, calling a JS callback
//     once per readiness (with the number of expirations since the last one). libuv keeps loop time in whole
//     milliseconds, so its timers fire 1-2 ms apart at best; the timerfd lets a media thread pace sends every few
//     hundred microseconds. Same timerfd with either engine (see startTicker below for why not an io_uring timeout);
//   - a send arena (ArrayBuffer) plus a batch (Int32Array of handle, offset, length triples): JS writes packets and
//     the batch, then one sendBatch(count) call loops send(2) here;
//   - a receive ring: recvArena (ArrayBuffer of `slots` slots of `slotBytes`), recvMeta (Int32Array: handle, byte
//     offset of the payload in recvArena, length per entry) and recvTime (Float64Array: kernel receive time per
//     entry on the performance.now() clock). When the polled fd is readable the addon drains what arrived into the
//     ring and calls the JS receive callback once with the number of entries; a full ring is handed to JS and
//     reused at once, so the ring never overflows. Entries (and their bytes) are valid only during the callback.
//   - stats (Float64Array) updated in place: counts, never a throw per packet;
//   - per-socket counters (socketStats): sends to the socket that never left (and the RTP sequence number of the
//     last one), datagrams the kernel dropped at it (SO_MEMINFO, exact at any moment) and truncated deliveries. A
//     media thread reads them once per socket when a call ends, after settle() has reaped every outstanding
//     completion and everything already queued on the sockets, so that the fate of every datagram is known.
//
// There is no global state: the class is defined per napi_env (main thread and every worker thread), and each
// instance registers an async cleanup hook so the env waits for its uv handle to close and every fd is closed when
// a worker thread exits.
//
// Clock: SO_TIMESTAMPNS gives CLOCK_REALTIME. Each drain samples CLOCK_REALTIME and CLOCK_MONOTONIC back to back
// and shifts the kernel stamps onto CLOCK_MONOTONIC (the clock libuv's uv_hrtime and so performance.now() use);
// the JS wrapper measures performance.now()'s origin on CLOCK_MONOTONIC once (setTimeOrigin) so recvTime is in
// performance.now() milliseconds. Error: the realtime/monotonic sample pair (< 1 us), the NTP slew over a packet's
// time in the queue (<= 500 ppm of it: < 1 us for a few ms), and the origin calibration (< 1 us); a step of the
// wall clock between the packet's arrival and the drain would shift that drain's stamps by the step.

#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <linux/sock_diag.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kMaxHandles = 65536;      // handle = generation << 16 | index
constexpr int kMaxEvents = 1024;             // ready sockets taken per epoll_wait
constexpr unsigned kRecvBurst = 8;           // datagrams asked for per recvmmsg call
constexpr unsigned kMaxPerSocketPerPoll = 64;  // fairness: the rest waits for the next loop iteration
constexpr size_t kCtrlBytes = 64;            // SCM_TIMESTAMPNS (32) + SO_RXQ_OVFL (24)
constexpr unsigned kSettlePasses = 65536;    // settle(): a peer that never stops sending cannot hold it forever

enum Stat : int {
  kStatSent,
  kStatSendEagain,
  kStatSendConnRefused,
  kStatSendOtherError,
  kStatSendBadEntry,
  kStatReceived,
  kStatRecvConnRefused,
  kStatRecvOtherError,
  kStatTruncated,
  kStatKernelDrops,
  kStatCallbacks,
  kStatPolls,
  kStatDroppedNoCallback,
  kStatLastSendErrno,
  kStatLastRecvErrno,
  kStatOpenSockets,
  kStatRearms,
  kStatBufferExhausted,
  kStatTicks,
  kStatTicksMissed,
  kStatCqOverflows,
  kStatCqeLost,
  kStatSettles,
  kStatCount
};

const char* const kStatNames[kStatCount] = {
    "sent",          "sendEagain",      "sendConnRefused", "sendOtherError", "sendBadEntry",
    "received",      "recvConnRefused", "recvOtherError",  "truncated",      "kernelDrops",
    "callbacks",     "polls",           "droppedNoCallback", "lastSendErrno", "lastRecvErrno",
    "openSockets",   "rearms",          "bufferExhausted", "ticks",        "ticksMissed",
    "cqOverflows",   "cqeLost",         "settles",
};

// socketStats(handle, out): out[i] for these indices (kSockStatNames is exported so the wrapper can check them).
enum SockStat : int { kSockSendFailed, kSockLastFailedSeq, kSockReceiveDrops, kSockTruncated, kSockStatCount };
const char* const kSockStatNames[kSockStatCount] = {"sendFailed", "lastFailedSeq", "receiveDrops", "truncated"};

constexpr int kMetaStride = 3;  // recvMeta: handle, payload offset in recvArena, length

// io_uring user_data: kind << 56 | seqValid << 48 | seq << 32 | handle. A SEND carries its datagram's RTP sequence
// number (read from the arena at submit time) because its failure completion is reaped after JS has reused the
// arena bytes; the handle attributes the failure to its socket (a closed or re-opened handle no longer matches).
constexpr uint64_t kUdRecv = 1, kUdSend = 2, kUdProbe = 3;
constexpr int kUdKindShift = 56;
constexpr uint64_t kUdSeqValid = uint64_t(1) << 48;
uint64_t UdKind(uint64_t ud) { return ud >> kUdKindShift; }
int32_t UdHandle(uint64_t ud) { return int32_t(uint32_t(ud)); }
int32_t UdSeq(uint64_t ud) { return (ud & kUdSeqValid) ? int32_t((ud >> 32) & 0xffff) : -1; }
// RTP sequence number: bytes 2-3, big endian; -1 when the datagram is too short to have one.
int32_t RtpSeq(const uint8_t* p, size_t len) { return len >= 4 ? int32_t((uint32_t(p[2]) << 8) | p[3]) : -1; }
uint64_t SendUserData(int32_t handle, int32_t seq) {
  uint64_t ud = (kUdSend << kUdKindShift) | uint32_t(handle);
  if (seq >= 0) ud |= kUdSeqValid | (uint64_t(uint32_t(seq)) << 32);
  return ud;
}
// Provided-buffer layout of a multishot recvmsg: io_uring_recvmsg_out, name (none), control area, payload.
constexpr uint32_t kUringCtrlBytes = 64;
constexpr uint32_t kUringHeaderBytes = sizeof(io_uring_recvmsg_out) + kUringCtrlBytes;

int SysUringSetup(unsigned entries, io_uring_params* p) { return int(syscall(__NR_io_uring_setup, entries, p)); }
int SysUringEnter(int fd, unsigned toSubmit, unsigned minComplete, unsigned flags) {
  return int(syscall(__NR_io_uring_enter, fd, toSubmit, minComplete, flags, nullptr, 0));
}
int SysUringRegister(int fd, unsigned op, const void* arg, unsigned nr) {
  return int(syscall(__NR_io_uring_register, fd, op, arg, nr));
}
unsigned Pow2AtMost(unsigned v) {
  unsigned p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}
unsigned Pow2AtLeast(unsigned v) {
  unsigned p = 1;
  while (p < v) p *= 2;
  return p;
}

#define NAPI_CALL_RET(env, call, ret)                                    \
  do {                                                                   \
    napi_status status_ = (call);                                        \
    if (status_ != napi_ok) {                                            \
      bool pending_ = false;                                             \
      napi_is_exception_pending((env), &pending_);                       \
      if (!pending_) napi_throw_error((env), nullptr, "N-API call failed: " #call); \
      return ret;                                                        \
    }                                                                    \
  } while (0)
#define NAPI_CALL(env, call) NAPI_CALL_RET(env, call, nullptr)

struct Sock {
  int fd = -1;
  uint16_t gen = 1;
  uint32_t drops = 0;  // the socket's kernel drop counter (sk_drops) when last seen: SO_RXQ_OVFL or SO_MEMINFO
  bool armed = false;  // io_uring: a multishot recvmsg is outstanding
  // socketStats; reset by open. Doubles: JS reads them as numbers, and they never wrap.
  double sendFailed = 0;      // batch entries for this socket that never became a datagram on the wire
  int32_t lastFailedSeq = -1; // RTP sequence number of the latest of them (-1: none, or under 4 bytes)
  double receiveDrops = 0;    // sum of the increments of `drops`
  double truncated = 0;
  void Reset(int newFd) {
    fd = newFd;
    drops = 0;
    armed = false;
    sendFailed = 0;
    lastFailedSeq = -1;
    receiveDrops = 0;
    truncated = 0;
  }
};

struct Uring {
  int fd = -1;
  unsigned sqEntries = 0;
  unsigned *sqHead = nullptr, *sqTail = nullptr, *sqMask = nullptr, *sqArray = nullptr, *sqFlags = nullptr;
  unsigned *cqHead = nullptr, *cqTail = nullptr, *cqMask = nullptr;
  unsigned* cqOverflow = nullptr;  // CQEs the kernel could not keep (IORING_FEAT_NODROP failed to allocate)
  unsigned cqLostSeen = 0;
  io_uring_sqe* sqes = nullptr;
  io_uring_cqe* cqes = nullptr;
  void* sqRing = MAP_FAILED;  // SQ and CQ rings, one mapping (IORING_FEAT_SINGLE_MMAP)
  size_t sqRingBytes = 0;
  size_t sqesBytes = 0;
  // Provided-buffer ring: io_uring_buf entries, the tail aliasing entry 0's `resv`. Addressed by hand: the
  // header's flexible-array union compiles with `bufs` at offset 8 in C++ (an empty struct has size 1 there).
  io_uring_buf* br = nullptr;
  size_t brBytes = 0;
  unsigned bufCount = 0;
  uint16_t brTail = 0;
  unsigned localTail = 0;  // SQ producer tail (ours alone)
  unsigned unsubmitted = 0;
  msghdr recvTemplate;
};

class Transport;

double MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

// The uv handles live in their own allocation: it must outlive the Transport until libuv's close callbacks have run.
struct PollBox {
  uv_poll_t poll;          // the io_uring or epoll fd
  uv_poll_t tick;          // the ticker's timerfd; initialised by the first startTicker
  bool tickInit = false;
  int handles = 0;         // initialised handles whose close callback has not run yet
  napi_async_cleanup_hook_handle hook = nullptr;
  Transport* owner = nullptr;
  bool closing = false;

  static void OnClosed(uv_handle_t* h) {
    PollBox* b = static_cast<PollBox*>(h->data);
    if (--b->handles > 0) return;
    if (b->hook != nullptr) napi_remove_async_cleanup_hook(b->hook);
    delete b;
  }
  // Closes every handle (idempotent); the box frees itself, and lets the env go, once the last one has closed.
  void CloseAll() {
    if (closing) return;
    closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), OnClosed);
    if (tickInit) uv_close(reinterpret_cast<uv_handle_t*>(&tick), OnClosed);
  }
};

class Transport {
 public:
  napi_env env = nullptr;
  napi_ref wrapper = nullptr;  // weak while no socket is open, strong otherwise (like a bound dgram socket)
  bool wrapperStrong = false;
  napi_async_context asyncCtx = nullptr;
  napi_ref callback = nullptr;
  int epfd = -1;   // epoll engine
  Uring ring;      // io_uring engine (ring.fd >= 0)
  bool uring = false;
  bool engineIsUring = false;  // stays after teardown, for the `engine` property
  std::string engineNote;  // why auto fell back to epoll
  std::vector<uint16_t> heldBids;  // io_uring buffers handed to JS, returned after the callback
  bool needRearm = false;          // io_uring: a multishot recvmsg ended (ENOBUFS, error, cancel)
  uint32_t rearmFrom = 0;          // io_uring: socket index the next re-arm starts at (the first one starved)
  bool starvedNoted = false;       // rearmFrom was set since the last re-arm
  // A drain (poll or settle) is running: the CQ head and the ring's entries are its own until it returns. settle()
  // from inside it (the receive callback, or a microtask it queues during a poll's drain) is refused.
  bool inDrain = false;
  bool settling = false;           // settle() is running: an exception of the receive callback goes to its caller
  double delivered = 0;            // datagrams handed to onReceive (or counted droppedNoCallback), ever
  uint32_t recvBufferBytes = 0;    // SO_RCVBUF asked for every socket (0: the system default)
  PollBox* box = nullptr;
  bool polling = false;
  bool destroyed = false;
  // Ticker: a periodic timerfd (created by the first startTicker), and the JS callback while it runs.
  int tickFd = -1;
  bool ticking = false;
  napi_ref tickCallback = nullptr;

  std::vector<Sock> socks;
  std::vector<uint32_t> freeList;
  uint32_t openCount = 0;

  // Arenas (V8-owned ArrayBuffers, held by strong references; checked for detachment before use).
  napi_ref sendArenaRef = nullptr, batchBufRef = nullptr, recvArenaRef = nullptr, recvMetaBufRef = nullptr,
           recvTimeBufRef = nullptr, statsBufRef = nullptr;
  uint8_t* sendArena = nullptr;
  size_t sendArenaBytes = 0;
  int32_t* batch = nullptr;
  uint32_t batchCapacity = 0;
  uint8_t* recvArena = nullptr;
  uint32_t slotBytes = 0;
  uint32_t slots = 0;
  int32_t* recvMeta = nullptr;
  double* recvTime = nullptr;
  double* stats = nullptr;

  std::vector<mmsghdr> mmsgs;
  std::vector<iovec> iovs;
  std::vector<uint8_t> ctrl;
  std::vector<epoll_event> events;

  double originMs = 0;  // performance.now() == CLOCK_MONOTONIC ms - originMs

  Sock* Lookup(int32_t handle) {
    if (handle <= 0) return nullptr;
    uint32_t idx = static_cast<uint32_t>(handle) & 0xffff;
    uint16_t gen = static_cast<uint16_t>(static_cast<uint32_t>(handle) >> 16);
    if (idx >= socks.size()) return nullptr;
    Sock& s = socks[idx];
    if (s.fd < 0 || s.gen != gen) return nullptr;
    return &s;
  }
  int32_t HandleOf(uint32_t idx) const { return static_cast<int32_t>((uint32_t(socks[idx].gen) << 16) | idx); }

  // Strong while the JS object has work that outlives any JS reference to it: open sockets or a running ticker.
  void UpdateStrong() { SetStrong(!destroyed && (openCount > 0 || ticking)); }

  void SetStrong(bool strong) {
    if (wrapper == nullptr || strong == wrapperStrong) return;
    uint32_t rc = 0;
    if (strong)
      napi_reference_ref(env, wrapper, &rc);
    else
      napi_reference_unref(env, wrapper, &rc);
    wrapperStrong = strong;
  }

  void UpdatePolling() {
    if (box == nullptr) return;
    bool want = openCount > 0 && !destroyed;
    if (want == polling) return;
    if (want)
      uv_poll_start(&box->poll, UV_READABLE, OnPoll);
    else
      uv_poll_stop(&box->poll);
    polling = want;
  }

  // Disarms the timerfd and stops watching it; the handle and fd stay for a later start. Idempotent.
  void StopTick() {
    if (!ticking) return;
    ticking = false;
    itimerspec off;
    memset(&off, 0, sizeof off);
    if (tickFd >= 0) timerfd_settime(tickFd, 0, &off, nullptr);
    if (box != nullptr && box->tickInit) uv_poll_stop(&box->tick);
  }

  // A reading of the socket's kernel drop counter (sk_drops, 32 bits, counted from the socket's creation): the
  // increase is counted for the socket and in kernelDrops. Readings arrive out of order (an SO_RXQ_OVFL value was
  // taken when its datagram was queued, so it can be older than an SO_MEMINFO reading): only a later value counts.
  void NoteDrops(Sock* s, uint32_t now) {
    const int32_t delta = int32_t(now - s->drops);
    if (delta <= 0) return;
    s->drops = now;
    s->receiveDrops += delta;
    if (stats) stats[kStatKernelDrops] += delta;
  }

  // Exact at any moment: SO_MEMINFO's SK_MEMINFO_DROPS is sk_drops itself. SO_RXQ_OVFL only shows it on the next
  // datagram that arrives, so drops after a socket's last delivered datagram would never be seen.
  void SampleDrops(Sock* s) {
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 && len >= sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
      NoteDrops(s, mem[SK_MEMINFO_DROPS]);
  }

  static void NoteSendFailure(Sock* s, int32_t seq) {
    s->sendFailed++;
    s->lastFailedSeq = seq;
  }

  void CloseIndex(uint32_t idx) {
    Sock& s = socks[idx];
    if (s.fd < 0) return;
    SampleDrops(&s);  // kernelDrops keeps the drops nobody asked socketStats for
    if (epfd >= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nullptr);
    // The armed recvmsg holds a reference to the socket: cancel it synchronously, or the port stays bound.
    if (uring && ring.fd >= 0 && s.armed) UringCancel(s.fd, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL);
    s.armed = false;
    ::close(s.fd);
    s.Reset(-1);
    s.gen = static_cast<uint16_t>(s.gen >= 0x7fff ? 1 : s.gen + 1);
    freeList.push_back(idx);
    openCount--;
    if (stats) stats[kStatOpenSockets] = openCount;
  }

  // Idempotent. Closes every socket and the epoll fd, starts closing the uv handle. `finalizing`: called from the
  // wrapper's finalizer, where references must not be touched (they are deleted right after).
  void Shutdown(bool finalizing) {
    if (destroyed) return;
    destroyed = true;
    if (uring && ring.fd >= 0) {
      UringCancel(-1, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      for (Sock& s : socks) s.armed = false;
    }
    for (uint32_t i = 0; i < socks.size(); i++) CloseIndex(i);
    StopTick();
    if (box != nullptr) {
      if (polling) uv_poll_stop(&box->poll);
      polling = false;
      box->owner = nullptr;
      box->CloseAll();  // uv_close stops a poll handle at once: closing the fds below is safe
      box = nullptr;
    }
    if (epfd >= 0) ::close(epfd);
    epfd = -1;
    if (tickFd >= 0) ::close(tickFd);
    tickFd = -1;
    UringTeardown();
    if (!finalizing) SetStrong(false);
  }

  // ---- io_uring engine ----
  // Returns 0 or an errno; on failure everything is undone.
  int UringSetup(unsigned sqWanted, unsigned cqWanted, unsigned bufs);
  void UringTeardown();
  int UringCancel(int fd, unsigned flags);
  io_uring_sqe* UringSqe();
  void UringSubmit();
  bool UringArm(uint32_t idx);
  void UringReturnBuffers();
  void UringFinishDrain();
  unsigned UringUnqueueSends();
  unsigned DrainUring();  // both return the completions / ready sockets handled (0: nothing was waiting)
  unsigned DrainEpoll();
  double Settle();

  // Env teardown (process exit, worker thread exit): close everything; the env waits until the box's last handle
  // has closed (PollBox::OnClosed removes the hook).
  static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void* arg) {
    PollBox* b = static_cast<PollBox*>(arg);
    if (b->owner != nullptr)
      b->owner->Shutdown(true);  // references are left to the finalizer napi runs at teardown
    else
      b->CloseAll();
  }

  // Kernel receive time (performance.now() ms) from SCM_TIMESTAMPNS; SO_RXQ_OVFL drops are added to the stats.
  double ReadControl(msghdr* mh, Sock* s, int64_t offsetNs) {
    double when = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(mh); c != nullptr; c = CMSG_NXTHDR(mh, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        int64_t mono = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec + offsetNs;
        when = double(mono) / 1e6 - originMs;
      } else if (c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t drops;
        memcpy(&drops, CMSG_DATA(c), sizeof drops);
        NoteDrops(s, drops);
      }
    }
    return when >= 0 ? when : MonotonicMs() - originMs;  // no stamp (should not happen): time of the drain
  }

  bool BufferAlive(napi_ref ref) {
    napi_value v;
    bool detached = true;
    if (napi_get_reference_value(env, ref, &v) != napi_ok || v == nullptr) return false;
    if (napi_is_detached_arraybuffer(env, v, &detached) != napi_ok) return false;
    return !detached;
  }

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTick(uv_poll_t* handle, int status, int events);
  int StartTick(uint64_t periodNs);  // 0 or an errno
  unsigned Drain() {
    inDrain = true;
    const unsigned n = uring ? DrainUring() : DrainEpoll();
    inDrain = false;
    return n;
  }
  bool Flush(uint32_t count);  // false: stop draining (destroyed, or the callback threw)
};

// CLOCK_MONOTONIC - CLOCK_REALTIME in ns, from the tightest of a few samples.
int64_t RealToMonoOffsetNs() {
  int64_t best = 0, bestSpan = INT64_MAX;
  for (int i = 0; i < 3; i++) {
    timespec r1, m, r2;
    clock_gettime(CLOCK_REALTIME, &r1);
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &r2);
    int64_t a = int64_t(r1.tv_sec) * 1000000000 + r1.tv_nsec;
    int64_t b = int64_t(r2.tv_sec) * 1000000000 + r2.tv_nsec;
    int64_t mono = int64_t(m.tv_sec) * 1000000000 + m.tv_nsec;
    if (b - a < bestSpan) {
      bestSpan = b - a;
      best = mono - (a + (b - a) / 2);
    }
  }
  return best;
}

void Transport::OnPoll(uv_poll_t* handle, int status, int events) {
  PollBox* b = static_cast<PollBox*>(handle->data);
  Transport* t = b->owner;
  if (t == nullptr || t->destroyed) return;
  t->stats[kStatPolls]++;
  if (status < 0) {
    t->stats[kStatRecvOtherError]++;
    t->stats[kStatLastRecvErrno] = -status;
    return;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(t->env, &scope) != napi_ok) return;
  t->Drain();
  napi_close_handle_scope(t->env, scope);
}

// The timerfd is readable: one JS call however many periods have passed (a late loop catches up in one tick; the
// JS side sends whatever is due by its own clock). The count is cleared by the read, so the level-triggered poll
// goes quiet until the next expiration.
void Transport::OnTick(uv_poll_t* handle, int status, int events) {
  PollBox* b = static_cast<PollBox*>(handle->data);
  Transport* t = b->owner;
  if (t == nullptr || t->destroyed || t->tickFd < 0) return;
  uint64_t expirations = 0;
  ssize_t r;
  do {
    r = ::read(t->tickFd, &expirations, sizeof expirations);
  } while (r < 0 && errno == EINTR);
  if (r != ssize_t(sizeof expirations) || expirations == 0 || !t->ticking || t->tickCallback == nullptr) return;
  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  if (t->BufferAlive(t->statsBufRef)) {
    t->stats[kStatTicks]++;
    t->stats[kStatTicksMissed] += double(expirations - 1);
  }
  if (napi_get_reference_value(env, t->tickCallback, &cb) == napi_ok && cb != nullptr) {
    // The receiver: the Transport itself (strong while the ticker runs).
    if (napi_get_reference_value(env, t->wrapper, &recv) != napi_ok || recv == nullptr) napi_get_global(env, &recv);
    napi_create_double(env, double(expirations), &argv[0]);
    if (napi_make_callback(env, t->asyncCtx, recv, cb, 1, argv, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);  // as a throwing setInterval callback would: 'uncaughtException'
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

int Transport::StartTick(uint64_t periodNs) {
  if (box == nullptr) return EBADF;
  if (tickFd < 0) {
    tickFd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tickFd < 0) return errno;
  }
  if (!box->tickInit) {
    uv_loop_s* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    box->tick.data = box;
    int rc = loop == nullptr ? UV_EINVAL : uv_poll_init(loop, &box->tick, tickFd);
    if (rc != 0) return -rc;
    box->tickInit = true;
    box->handles++;
  }
  itimerspec spec;
  spec.it_interval.tv_sec = time_t(periodNs / 1000000000);
  spec.it_interval.tv_nsec = long(periodNs % 1000000000);
  spec.it_value = spec.it_interval;  // first expiration one period from now
  if (timerfd_settime(tickFd, 0, &spec, nullptr) != 0) return errno;  // also clears pending expirations
  if (!ticking) {
    int rc = uv_poll_start(&box->tick, UV_READABLE, OnTick);
    if (rc != 0) {
      memset(&spec, 0, sizeof spec);
      timerfd_settime(tickFd, 0, &spec, nullptr);
      return -rc;
    }
    ticking = true;
  }
  return 0;
}

unsigned Transport::DrainEpoll() {
  if (!BufferAlive(recvArenaRef) || !BufferAlive(recvMetaBufRef) || !BufferAlive(recvTimeBufRef) ||
      !BufferAlive(statsBufRef)) {
    // JS transferred a receive buffer away: nowhere safe to write. Stop for good rather than scribble.
    Shutdown(false);
    return 0;
  }
  int n = epoll_wait(epfd, events.data(), kMaxEvents, 0);
  if (n <= 0) return 0;
  const int64_t offsetNs = RealToMonoOffsetNs();
  uint32_t pos = 0;
  for (int e = 0; e < n; e++) {
    const int32_t h = static_cast<int32_t>(events[e].data.u32);
    unsigned taken = 0;
    int errorsHere = 0;
    while (taken < kMaxPerSocketPerPoll) {
      if (pos == slots) {
        if (!Flush(pos)) return unsigned(n);
        pos = 0;
      }
      Sock* s = Lookup(h);  // again after every flush: the callback may have closed it
      if (s == nullptr) break;
      unsigned vlen = slots - pos;
      if (vlen > kRecvBurst) vlen = kRecvBurst;
      for (unsigned j = 0; j < vlen; j++) {
        msghdr& m = mmsgs[pos + j].msg_hdr;
        m.msg_controllen = kCtrlBytes;
        m.msg_flags = 0;
        m.msg_name = nullptr;
        m.msg_namelen = 0;
      }
      int r = recvmmsg(s->fd, &mmsgs[pos], vlen, MSG_DONTWAIT, nullptr);
      if (r < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        if (err == EINTR) continue;
        stats[kStatLastRecvErrno] = err;
        // ECONNREFUSED: an ICMP port unreachable for an earlier send; reading clears it, data may still be queued.
        stats[err == ECONNREFUSED ? kStatRecvConnRefused : kStatRecvOtherError]++;
        if (++errorsHere >= 4) break;
        continue;
      }
      for (int j = 0; j < r; j++) {
        const uint32_t slot = pos + j;
        mmsghdr& mm = mmsgs[slot];
        recvMeta[kMetaStride * slot] = h;
        recvMeta[kMetaStride * slot + 1] = int32_t(slot * slotBytes);
        recvMeta[kMetaStride * slot + 2] = static_cast<int32_t>(mm.msg_len);
        if (mm.msg_hdr.msg_flags & MSG_TRUNC) {
          stats[kStatTruncated]++;
          s->truncated++;
        }
        recvTime[slot] = ReadControl(&mm.msg_hdr, s, offsetNs);
      }
      pos += r;
      taken += r;
      stats[kStatReceived] += r;
      if (unsigned(r) < vlen) break;  // the socket's queue is empty
    }
  }
  if (pos > 0) Flush(pos);
  return unsigned(n);
}

bool Transport::Flush(uint32_t count) {
  delivered += count;
  if (callback == nullptr) {
    stats[kStatDroppedNoCallback] += count;
    return true;
  }
  napi_value cb, recv, argv[1], result;
  if (napi_get_reference_value(env, callback, &cb) != napi_ok || cb == nullptr) return false;
  // napi_make_callback needs an object receiver: the Transport itself (alive: a socket is open, so it is strong).
  if (napi_get_reference_value(env, wrapper, &recv) != napi_ok || recv == nullptr) napi_get_global(env, &recv);
  napi_create_uint32(env, count, &argv[0]);
  stats[kStatCallbacks]++;
  napi_status st = napi_make_callback(env, asyncCtx, recv, cb, 1, argv, &result);
  if (st != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending && !settling) {  // in settle() the exception stays pending: settle() throws it to its caller
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);  // as a throwing 'message' handler would: 'uncaughtException'
    }
    return false;
  }
  return !destroyed;
}

// ---------------------------------------------------------------------------------------------------------------
// io_uring engine

int Transport::UringSetup(unsigned sqWanted, unsigned cqWanted, unsigned bufs) {
  Uring& r = ring;
  io_uring_params p;
  memset(&p, 0, sizeof p);
  // COOP_TASKRUN: completions are not forced on a thread busy in JS; they run at its next syscall (libuv polls often).
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  p.cq_entries = cqWanted;
  r.fd = SysUringSetup(sqWanted, &p);
  if (r.fd < 0) return errno;
  int err = 0;
  if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_SINGLE_MMAP)) {
    err = ENOSYS;
  } else {
    r.sqEntries = p.sq_entries;
    r.sqRingBytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqBytes = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    if (cqBytes > r.sqRingBytes) r.sqRingBytes = cqBytes;
    r.sqRing = mmap(nullptr, r.sqRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r.fd, IORING_OFF_SQ_RING);
    r.sqesBytes = p.sq_entries * sizeof(io_uring_sqe);
    void* sq = r.sqRing == MAP_FAILED ? MAP_FAILED
                                      : mmap(nullptr, r.sqesBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                             r.fd, IORING_OFF_SQES);
    if (r.sqRing == MAP_FAILED || sq == MAP_FAILED) {
      err = errno;
    } else {
      uint8_t* q = static_cast<uint8_t*>(r.sqRing);
      r.sqes = static_cast<io_uring_sqe*>(sq);
      r.sqHead = reinterpret_cast<unsigned*>(q + p.sq_off.head);
      r.sqTail = reinterpret_cast<unsigned*>(q + p.sq_off.tail);
      r.sqMask = reinterpret_cast<unsigned*>(q + p.sq_off.ring_mask);
      r.sqArray = reinterpret_cast<unsigned*>(q + p.sq_off.array);
      r.sqFlags = reinterpret_cast<unsigned*>(q + p.sq_off.flags);
      r.cqHead = reinterpret_cast<unsigned*>(q + p.cq_off.head);
      r.cqTail = reinterpret_cast<unsigned*>(q + p.cq_off.tail);
      r.cqMask = reinterpret_cast<unsigned*>(q + p.cq_off.ring_mask);
      r.cqOverflow = reinterpret_cast<unsigned*>(q + p.cq_off.overflow);
      r.cqes = reinterpret_cast<io_uring_cqe*>(q + p.cq_off.cqes);
      r.localTail = *r.sqTail;
    }
  }
  if (err == 0) {
    // Provided buffers = the first `bufs` slots of the receive arena.
    r.bufCount = bufs;
    r.brBytes = (bufs * sizeof(io_uring_buf) + 4095) & ~size_t(4095);
    void* m = mmap(nullptr, r.brBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      err = errno;
      r.brBytes = 0;
    } else {
      r.br = static_cast<io_uring_buf*>(m);
      io_uring_buf_reg reg;
      memset(&reg, 0, sizeof reg);
      reg.ring_addr = reinterpret_cast<uint64_t>(r.br);
      reg.ring_entries = bufs;
      reg.bgid = 0;
      if (SysUringRegister(r.fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) err = errno;
    }
  }
  if (err == 0) {
    for (unsigned i = 0; i < bufs; i++) {
      r.br[i].addr = reinterpret_cast<uint64_t>(recvArena + size_t(i) * slotBytes);
      r.br[i].len = slotBytes;
      r.br[i].bid = uint16_t(i);
    }
    r.brTail = uint16_t(bufs);
    __atomic_store_n(&r.br[0].resv, r.brTail, __ATOMIC_RELEASE);
    memset(&r.recvTemplate, 0, sizeof r.recvTemplate);
    r.recvTemplate.msg_controllen = kUringCtrlBytes;
    uring = true;
    // Probe what older kernels lack: multishot recvmsg (6.0) and synchronous cancel (6.0) on a scratch socket.
    int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in lo;
    memset(&lo, 0, sizeof lo);
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (probe < 0 || ::bind(probe, reinterpret_cast<sockaddr*>(&lo), sizeof lo) != 0) {
      err = errno;
    } else {
      io_uring_sqe* e = UringSqe();
      if (e == nullptr) {
        ::close(probe);
        UringTeardown();
        return EBUSY;
      }
      memset(e, 0, sizeof *e);
      e->opcode = IORING_OP_RECVMSG;
      e->fd = probe;
      e->addr = reinterpret_cast<uint64_t>(&r.recvTemplate);
      e->ioprio = IORING_RECV_MULTISHOT;
      e->flags = IOSQE_BUFFER_SELECT;
      e->buf_group = 0;
      e->user_data = kUdProbe << kUdKindShift;
      UringSubmit();
      if (r.unsubmitted != 0) err = EIO;
      // An unsupported request completes at once with an error; an armed one is found and cancelled.
      unsigned head = *r.cqHead, tail = __atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE);
      for (; head != tail; head++) {
        const io_uring_cqe& c = r.cqes[head & *r.cqMask];
        if (UdKind(c.user_data) == kUdProbe && c.res < 0 && err == 0) err = -c.res;
      }
      __atomic_store_n(r.cqHead, head, __ATOMIC_RELEASE);
      if (err == 0 && UringCancel(probe, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL) < 0) err = errno;
      __atomic_store_n(r.cqHead, __atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    }
    if (probe >= 0) ::close(probe);
  }
  if (err != 0) {
    UringTeardown();
    return err;
  }
  return 0;
}

void Transport::UringTeardown() {
  Uring& r = ring;
  if (r.sqes != nullptr) munmap(r.sqes, r.sqesBytes);
  if (r.sqRing != MAP_FAILED) munmap(r.sqRing, r.sqRingBytes);
  if (r.fd >= 0) ::close(r.fd);  // unregisters the buffer ring
  if (r.br != nullptr) munmap(r.br, r.brBytes);
  r = Uring();
  uring = false;
}

// Synchronous cancel (IORING_REGISTER_SYNC_CANCEL): returns once matching requests are gone, so their socket
// references are dropped before the caller closes the fd.
int Transport::UringCancel(int fd, unsigned flags) {
  io_uring_sync_cancel_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.fd = fd;
  reg.flags = flags;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  int rc;
  do {
    rc = SysUringRegister(ring.fd, IORING_REGISTER_SYNC_CANCEL, &reg, 1);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno == ENOENT) return 0;
  return rc;
}

io_uring_sqe* Transport::UringSqe() {
  Uring& r = ring;
  unsigned head = __atomic_load_n(r.sqHead, __ATOMIC_ACQUIRE);
  if (r.localTail - head >= r.sqEntries) {
    UringSubmit();
    head = __atomic_load_n(r.sqHead, __ATOMIC_ACQUIRE);
    if (r.localTail - head >= r.sqEntries) return nullptr;
  }
  unsigned i = r.localTail & *r.sqMask;
  r.sqArray[i] = i;
  r.localTail++;
  r.unsubmitted++;
  return &r.sqes[i];
}

void Transport::UringSubmit() {
  Uring& r = ring;
  if (r.unsubmitted == 0) return;
  __atomic_store_n(r.sqTail, r.localTail, __ATOMIC_RELEASE);
  int rc;
  do {
    rc = SysUringEnter(r.fd, r.unsubmitted, 0, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc >= 0) {
    r.unsubmitted -= unsigned(rc) < r.unsubmitted ? unsigned(rc) : r.unsubmitted;
  } else {
    stats[kStatLastSendErrno] = errno;  // EBUSY/EAGAIN: the entries stay queued for the next submit
  }
}

bool Transport::UringArm(uint32_t idx) {
  Sock& s = socks[idx];
  io_uring_sqe* e = UringSqe();
  if (e == nullptr) return false;
  memset(e, 0, sizeof *e);
  e->opcode = IORING_OP_RECVMSG;
  e->fd = s.fd;
  e->addr = reinterpret_cast<uint64_t>(&ring.recvTemplate);
  e->ioprio = IORING_RECV_MULTISHOT;
  e->flags = IOSQE_BUFFER_SELECT;
  e->buf_group = 0;
  e->user_data = (kUdRecv << kUdKindShift) | uint32_t(HandleOf(idx));
  s.armed = true;
  return true;
}

void Transport::UringReturnBuffers() {
  Uring& r = ring;
  if (heldBids.empty()) return;
  const unsigned mask = r.bufCount - 1;
  for (uint16_t bid : heldBids) {
    io_uring_buf& b = r.br[r.brTail & mask];  // field by field: br[0].resv is the ring's tail
    b.addr = reinterpret_cast<uint64_t>(recvArena + size_t(bid) * slotBytes);
    b.len = slotBytes;
    b.bid = bid;
    r.brTail++;
  }
  heldBids.clear();
  __atomic_store_n(&r.br[0].resv, r.brTail, __ATOMIC_RELEASE);
}

// After a drain (or a callback that threw): give the buffers back, re-arm receives that ended, submit. The re-arms
// are issued at once by the submit in SQE order, and the first ones take the free buffers: start at the socket that
// was the first to find none last time (rearmFrom), so sockets low in the table cannot starve the others.
void Transport::UringFinishDrain() {
  UringReturnBuffers();
  if (needRearm) {
    needRearm = false;
    starvedNoted = false;
    const uint32_t n = uint32_t(socks.size());
    const uint32_t from = rearmFrom < n ? rearmFrom : 0;
    for (uint32_t k = 0; k < n; k++) {
      const uint32_t i = from + k < n ? from + k : from + k - n;
      if (socks[i].fd >= 0 && !socks[i].armed && UringArm(i)) stats[kStatRearms]++;
    }
  }
  UringSubmit();
}

// After sendBatch's submit: SEND entries the kernel did not take (io_uring_enter consumed fewer than asked, e.g. no
// memory for requests) must not stay queued for a later submit, which would send whatever JS has written into those
// arena bytes by then: a later packet, twice. They become NOPs and are counted as sends that failed. Returns how many.
unsigned Transport::UringUnqueueSends() {
  Uring& r = ring;
  if (r.unsubmitted == 0) return 0;
  UringSubmit();  // once more: EINTR-like transient refusals
  if (r.unsubmitted == 0) return 0;
  unsigned undone = 0;
  const unsigned head = __atomic_load_n(r.sqHead, __ATOMIC_ACQUIRE);  // no SQPOLL: only our enter moves it
  for (unsigned i = head; i != r.localTail; i++) {
    io_uring_sqe& e = r.sqes[r.sqArray[i & *r.sqMask] & *r.sqMask];
    if (e.opcode != IORING_OP_SEND) continue;  // receive arms stay: they reference no arena bytes
    const uint64_t ud = e.user_data;
    memset(&e, 0, sizeof e);
    e.opcode = IORING_OP_NOP;
    e.flags = IOSQE_CQE_SKIP_SUCCESS;
    Sock* s = Lookup(UdHandle(ud));
    if (s != nullptr) NoteSendFailure(s, UdSeq(ud));
    stats[kStatSendEagain]++;
    undone++;
  }
  return undone;
}

unsigned Transport::DrainUring() {
  if (!BufferAlive(recvArenaRef) || !BufferAlive(recvMetaBufRef) || !BufferAlive(recvTimeBufRef) ||
      !BufferAlive(statsBufRef)) {
    Shutdown(false);
    return 0;
  }
  Uring& r = ring;
  const int64_t offsetNs = RealToMonoOffsetNs();
  // Under a backlog the buffer ring runs dry: receives end with ENOBUFS while datagrams wait in their sockets. Once
  // JS has had the ring and its buffers are back, the ended receives are re-armed and reaped again in this same
  // drain, up to what the epoll engine takes per poll (kMaxPerSocketPerPoll per socket); the rest waits for the next
  // loop iteration. (Re-arming only at the end of the drain took one ring, `bufCount` datagrams, per loop
  // iteration: a thread behind by a few thousand datagrams lost to socket overflow what epoll would have drained.)
  const double budget = double(kMaxPerSocketPerPoll) * double(openCount > 0 ? openCount : 1);
  double taken = 0, takenAtRearm = -1;
  uint32_t count = 0;     // ring entries not yet handed to JS
  unsigned reaped = 0;    // completions, of any kind
  unsigned head = *r.cqHead;
  for (;;) {
    unsigned tail = __atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE);
    if (head == tail) {
      // Completions the CQ had no room for wait in the kernel (IORING_FEAT_NODROP), and every later one queues behind
      // them, until an enter moves them over.
      if (__atomic_load_n(r.sqFlags, __ATOMIC_ACQUIRE) & IORING_SQ_CQ_OVERFLOW) {
        stats[kStatCqOverflows]++;
        SysUringEnter(r.fd, 0, 0, IORING_ENTER_GETEVENTS);
        if (__atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE) != head) continue;
      }
      // Done when nothing ended, when the budget is spent, or when the last re-arm brought no datagram (a receive
      // that ends again at once, e.g. on a socket error, must not spin here).
      if (!needRearm || taken >= budget || taken == takenAtRearm || destroyed) break;
      // A re-arm pass: JS gets the entries whose buffers are about to be reused, then the buffers go back and the
      // receives that ended are re-armed; the submit issues them at once (and runs pending task work on its way
      // out), so what waits in the sockets is in the CQ when it returns.
      if (count > 0) {
        if (!Flush(count)) {
          if (!destroyed) UringFinishDrain();
          return reaped;
        }
        count = 0;
        if (destroyed) return reaped;
      }
      takenAtRearm = taken;
      UringFinishDrain();
      continue;
    }
    for (; head != tail; head++) {
      const io_uring_cqe c = r.cqes[head & *r.cqMask];
      const uint64_t kind = UdKind(c.user_data);
      const int32_t h = UdHandle(c.user_data);
      reaped++;
      if (kind == kUdSend) {  // only failures complete (IOSQE_CQE_SKIP_SUCCESS)
        if (c.res < 0) {
          const int err = -c.res;
          stats[kStatSent]--;
          stats[kStatLastSendErrno] = err;
          if (err == EAGAIN || err == ENOBUFS) stats[kStatSendEagain]++;
          else if (err == ECONNREFUSED) stats[kStatSendConnRefused]++;
          else stats[kStatSendOtherError]++;
          Sock* s = Lookup(h);  // null once closed: its counters are gone (settle() before close)
          if (s != nullptr) NoteSendFailure(s, UdSeq(c.user_data));
        }
        continue;
      }
      if (kind != kUdRecv) continue;
      Sock* s = Lookup(h);
      if (c.flags & IORING_CQE_F_BUFFER) {
        const uint16_t bid = uint16_t(c.flags >> IORING_CQE_BUFFER_SHIFT);
        heldBids.push_back(bid);
        if (s != nullptr && c.res >= int(kUringHeaderBytes)) {
          uint8_t* buf = recvArena + size_t(bid) * slotBytes;
          io_uring_recvmsg_out out;
          memcpy(&out, buf, sizeof out);
          uint32_t length = out.payloadlen;
          const uint32_t room = uint32_t(c.res) - kUringHeaderBytes;
          if (length > room || (out.flags & MSG_TRUNC)) {
            stats[kStatTruncated]++;
            s->truncated++;
            if (length > room) length = room;
          }
          msghdr mh;
          memset(&mh, 0, sizeof mh);
          mh.msg_control = buf + sizeof(io_uring_recvmsg_out);
          mh.msg_controllen = out.controllen;
          recvMeta[kMetaStride * count] = h;
          recvMeta[kMetaStride * count + 1] = int32_t(size_t(bid) * slotBytes + kUringHeaderBytes);
          recvMeta[kMetaStride * count + 2] = int32_t(length);
          recvTime[count] = ReadControl(&mh, s, offsetNs);
          count++;
          taken++;
          stats[kStatReceived]++;
        }
      }
      if (c.res < 0) {
        const int err = -c.res;
        if (err == ENOBUFS) {
          stats[kStatBufferExhausted]++;  // the datagrams wait in the socket; re-armed below
          if (s != nullptr && !starvedNoted) {
            rearmFrom = uint32_t(h) & 0xffff;
            starvedNoted = true;
          }
        } else if (err != ECANCELED) {
          stats[kStatLastRecvErrno] = err;
          stats[err == ECONNREFUSED ? kStatRecvConnRefused : kStatRecvOtherError]++;
        }
      }
      if (!(c.flags & IORING_CQE_F_MORE) && s != nullptr) {
        s->armed = false;
        needRearm = true;
      }
      if (count == r.bufCount) {
        // Every buffer is JS's: hand the ring over. The CQ head moves first: the callback may send (an enter) or
        // close sockets (a synchronous cancel), and entries past the head stay ours meanwhile.
        __atomic_store_n(r.cqHead, head + 1, __ATOMIC_RELEASE);
        if (!Flush(count)) {
          if (!destroyed) UringFinishDrain();
          return reaped;
        }
        count = 0;
        UringReturnBuffers();
      }
    }
    __atomic_store_n(r.cqHead, head, __ATOMIC_RELEASE);
  }
  if (count > 0 && !Flush(count)) {
    if (!destroyed) UringFinishDrain();
    return reaped;
  }
  if (destroyed) return reaped;
  UringFinishDrain();
  // The kernel's count of completions it had to drop (NODROP could not allocate): a lost SEND failure or receive
  // would make the counts inexact, so it is reported rather than assumed zero.
  const unsigned lost = __atomic_load_n(r.cqOverflow, __ATOMIC_RELAXED);
  if (lost != r.cqLostSeen) {
    stats[kStatCqeLost] += double(lost - r.cqLostSeen);
    r.cqLostSeen = lost;
  }
  return reaped;
}

// Reaps what is already there, synchronously, as polls would: io_uring completions (send failures included, and the
// task work of receives whose datagrams have arrived: COOP_TASKRUN leaves it for our next syscall) and every
// datagram queued on the sockets, delivered through onReceive. Passes until one finds nothing, at most
// kSettlePasses. Returns the datagrams delivered.
double Transport::Settle() {
  const double before = delivered;
  stats[kStatSettles]++;
  settling = true;
  for (unsigned pass = 0; pass < kSettlePasses && !destroyed; pass++) {
    if (uring) {
      UringSubmit();
      SysUringEnter(ring.fd, 0, 0, IORING_ENTER_GETEVENTS);  // runs task work, moves overflowed completions in
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    const unsigned n = Drain();
    napi_close_handle_scope(env, scope);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (n == 0 || pending) break;
  }
  settling = false;
  return delivered - before;
}

// ---------------------------------------------------------------------------------------------------------------
// JS bindings

bool GetString(napi_env env, napi_value v, const char* what, std::string* out);
bool IsNullish(napi_env env, napi_value v);

Transport* Unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, bool requireLive = true) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, nullptr) != napi_ok) return nullptr;
  void* p = nullptr;
  if (napi_unwrap(env, self, &p) != napi_ok || p == nullptr) {
    napi_throw_type_error(env, nullptr, "not a Transport");
    return nullptr;
  }
  Transport* t = static_cast<Transport*>(p);
  if (requireLive && t->destroyed) {
    napi_throw_error(env, "ERR_TRANSPORT_DESTROYED", "transport is destroyed");
    return nullptr;
  }
  return t;
}

bool GetUint32Option(napi_env env, napi_value obj, const char* name, uint32_t def, uint32_t lo, uint32_t hi,
                     uint32_t* out) {
  *out = def;
  napi_valuetype type;
  napi_typeof(env, obj, &type);
  if (type != napi_object) return true;
  bool has = false;
  napi_has_named_property(env, obj, name, &has);
  if (!has) return true;
  napi_value v;
  napi_get_named_property(env, obj, name, &v);
  napi_typeof(env, v, &type);
  if (type == napi_undefined) return true;
  double d;
  if (type != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d != double(uint64_t(d)) || d < lo ||
      d > hi) {
    std::string msg = std::string("option ") + name + " must be an integer in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]";
    napi_throw_range_error(env, nullptr, msg.c_str());
    return false;
  }
  *out = uint32_t(d);
  return true;
}

bool MakeBuffer(napi_env env, napi_value self, const char* name, size_t bytes, napi_typedarray_type type,
                size_t elements, void** data, napi_ref* ref) {
  napi_value ab, view;
  if (napi_create_arraybuffer(env, bytes, data, &ab) != napi_ok) return false;
  memset(*data, 0, bytes);
  if (napi_create_reference(env, ab, 1, ref) != napi_ok) return false;
  if (type == napi_uint8_array && elements == 0) {
    view = ab;  // arenas are exposed as the ArrayBuffer itself
  } else if (napi_create_typedarray(env, type, elements, ab, 0, &view) != napi_ok) {
    return false;
  }
  return napi_set_named_property(env, self, name, view) == napi_ok;
}

// Deletes a reference if set and clears it.
void DropRef(napi_env env, napi_ref* r) {
  if (*r != nullptr) napi_delete_reference(env, *r);
  *r = nullptr;
}

void Finalize(napi_env env, void* data, void* hint) {
  Transport* t = static_cast<Transport*>(data);
  t->Shutdown(true);
  napi_ref* refs[] = {&t->sendArenaRef, &t->batchBufRef,    &t->recvArenaRef, &t->recvMetaBufRef,
                      &t->recvTimeBufRef, &t->statsBufRef, &t->callback,     &t->tickCallback, &t->wrapper};
  for (napi_ref* r : refs) DropRef(env, r);
  if (t->asyncCtx != nullptr) napi_async_destroy(env, t->asyncCtx);
  delete t;
}

napi_value New(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, target;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  NAPI_CALL(env, napi_get_new_target(env, info, &target));
  if (target == nullptr) {
    napi_throw_type_error(env, nullptr, "Transport must be called with new");
    return nullptr;
  }
  napi_value opts = argc >= 1 ? argv[0] : nullptr;
  uint32_t sendArenaBytes = 1 << 20, batchCapacity = 4096, slots = 1024, slotBytes = 2048, recvBufferBytes = 0;
  if (opts != nullptr) {
    if (!GetUint32Option(env, opts, "sendArenaBytes", sendArenaBytes, 64, 1u << 30, &sendArenaBytes)) return nullptr;
    if (!GetUint32Option(env, opts, "batchCapacity", batchCapacity, 1, 1u << 20, &batchCapacity)) return nullptr;
    if (!GetUint32Option(env, opts, "recvSlots", slots, 1, 1u << 16, &slots)) return nullptr;
    if (!GetUint32Option(env, opts, "slotBytes", slotBytes, 64, 65536, &slotBytes)) return nullptr;
    if (!GetUint32Option(env, opts, "recvBufferBytes", recvBufferBytes, 0, 1u << 30, &recvBufferBytes)) return nullptr;
  }
  std::string engine = "auto";
  if (opts != nullptr) {
    napi_valuetype type;
    napi_typeof(env, opts, &type);
    bool has = false;
    if (type == napi_object) napi_has_named_property(env, opts, "engine", &has);
    if (has) {
      napi_value v;
      napi_get_named_property(env, opts, "engine", &v);
      if (!IsNullish(env, v)) {
        if (!GetString(env, v, "engine", &engine)) return nullptr;
        if (engine != "auto" && engine != "epoll" && engine != "io_uring") {
          napi_throw_range_error(env, nullptr, "option engine must be 'auto', 'io_uring' or 'epoll'");
          return nullptr;
        }
      }
    }
  }

  Transport* t = new Transport();
  t->env = env;
  void* p;
  bool ok = MakeBuffer(env, self, "sendArena", sendArenaBytes, napi_uint8_array, 0, &p, &t->sendArenaRef);
  t->sendArena = static_cast<uint8_t*>(p);
  t->sendArenaBytes = sendArenaBytes;
  ok = ok && MakeBuffer(env, self, "batch", size_t(batchCapacity) * 3 * 4, napi_int32_array, size_t(batchCapacity) * 3,
                        &p, &t->batchBufRef);
  t->batch = static_cast<int32_t*>(p);
  t->batchCapacity = batchCapacity;
  ok = ok && MakeBuffer(env, self, "recvArena", size_t(slots) * slotBytes, napi_uint8_array, 0, &p, &t->recvArenaRef);
  t->recvArena = static_cast<uint8_t*>(p);
  ok = ok && MakeBuffer(env, self, "recvMeta", size_t(slots) * kMetaStride * 4, napi_int32_array,
                        size_t(slots) * kMetaStride, &p, &t->recvMetaBufRef);
  t->recvMeta = static_cast<int32_t*>(p);
  ok = ok && MakeBuffer(env, self, "recvTime", size_t(slots) * 8, napi_float64_array, slots, &p, &t->recvTimeBufRef);
  t->recvTime = static_cast<double*>(p);
  ok = ok && MakeBuffer(env, self, "stats", size_t(kStatCount) * 8, napi_float64_array, kStatCount, &p,
                        &t->statsBufRef);
  t->stats = static_cast<double*>(p);
  if (!ok) {
    delete t;  // references leak only on this failure path (out of memory)
    return nullptr;
  }
  t->slots = slots;
  t->slotBytes = slotBytes;
  t->recvBufferBytes = recvBufferBytes;

  if (engine != "epoll") {
    int err = slotBytes < kUringHeaderBytes + 64 ? EINVAL : 0;
    if (err == 0) {
      const unsigned bufs = Pow2AtMost(slots < 32768 ? slots : 32768);
      const unsigned sq = Pow2AtLeast(batchCapacity < 256 ? 256 : batchCapacity > 32768 ? 32768 : batchCapacity);
      unsigned cq = Pow2AtLeast(4 * bufs > 2 * sq ? 4 * bufs : 2 * sq);
      if (cq < 4096) cq = 4096;
      if (cq > 65536) cq = 65536;
      err = t->UringSetup(sq, cq, bufs);
    }
    if (err != 0) {
      t->engineNote = std::string("io_uring unavailable: ") + uv_err_name(-err) + " (" + strerror(err) + ")";
      if (engine == "io_uring") {
        std::string msg = t->engineNote;
        delete t;
        napi_throw_error(env, uv_err_name(-err), msg.c_str());
        return nullptr;
      }
    }
  }
  t->engineIsUring = t->uring;
  if (!t->uring) {
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->epfd < 0) {
      int err = errno;
      delete t;
      napi_throw_error(env, uv_err_name(-err), (std::string("epoll_create1: ") + strerror(err)).c_str());
      return nullptr;
    }
  }
  t->mmsgs.resize(slots);
  t->iovs.resize(slots);
  t->ctrl.assign(size_t(slots) * kCtrlBytes, 0);
  t->events.resize(kMaxEvents);
  for (uint32_t i = 0; i < slots; i++) {
    t->iovs[i].iov_base = t->recvArena + size_t(i) * slotBytes;
    t->iovs[i].iov_len = slotBytes;
    msghdr& m = t->mmsgs[i].msg_hdr;
    memset(&m, 0, sizeof m);
    m.msg_iov = &t->iovs[i];
    m.msg_iovlen = 1;
    m.msg_control = t->ctrl.data() + size_t(i) * kCtrlBytes;
    m.msg_controllen = kCtrlBytes;
  }
  t->originMs = 0;

  uv_loop_s* loop = nullptr;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  PollBox* b = new PollBox();
  b->owner = t;
  b->poll.data = b;
  int rc = uv_poll_init(loop, &b->poll, t->uring ? t->ring.fd : t->epfd);
  if (rc != 0) {
    delete b;
    if (t->epfd >= 0) ::close(t->epfd);
    t->UringTeardown();
    delete t;
    napi_throw_error(env, uv_err_name(rc), "uv_poll_init failed");
    return nullptr;
  }
  b->handles = 1;
  t->box = b;
  if (napi_add_async_cleanup_hook(env, Transport::OnEnvCleanup, b, &b->hook) != napi_ok) b->hook = nullptr;

  napi_value resourceName, resource;
  napi_create_string_utf8(env, "RtpTransport", NAPI_AUTO_LENGTH, &resourceName);
  napi_create_object(env, &resource);
  napi_async_init(env, resource, resourceName, &t->asyncCtx);

  if (napi_wrap(env, self, t, Finalize, nullptr, nullptr) != napi_ok) {
    t->Shutdown(true);
    delete t;
    return nullptr;
  }
  napi_create_reference(env, self, 0, &t->wrapper);
  return self;
}

bool ParseAddress(const std::string& ip, uint32_t port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  sockaddr_in* a4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(uint16_t(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  sockaddr_in6* a6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(uint16_t(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string FormatAddress(const std::string& ip, uint32_t port) {
  bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// Throws an Error like Node's system errors: "bind 127.0.0.1:40000 EADDRINUSE (address already in use)", with
// code, errno, syscall, address and port properties.
void ThrowSys(napi_env env, int err, const char* syscall, const std::string& ip, uint32_t port) {
  const char* name = uv_err_name(-err);
  std::string msg = std::string(syscall) + " " + FormatAddress(ip, port) + " " + name + " (" + uv_strerror(-err) + ")";
  napi_value code, message, error, v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg.c_str(), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  napi_create_string_utf8(env, ip.c_str(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "address", v);
  napi_create_uint32(env, port, &v);
  napi_set_named_property(env, error, "port", v);
  napi_throw(env, error);
}

bool GetString(napi_env env, napi_value v, const char* what, std::string* out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok || len > 255) {
    napi_throw_type_error(env, nullptr, (std::string(what) + " must be an IP address string").c_str());
    return false;
  }
  out->resize(len + 1);
  napi_get_value_string_utf8(env, v, &(*out)[0], len + 1, &len);
  out->resize(len);
  return true;
}

bool GetPort(napi_env env, napi_value v, const char* what, uint32_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != double(int64_t(d)) || d < 0 || d > 65535) {
    napi_throw_range_error(env, nullptr, (std::string(what) + " must be an integer in [0, 65535]").c_str());
    return false;
  }
  *out = uint32_t(d);
  return true;
}

bool IsNullish(napi_env env, napi_value v) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  return type == napi_undefined || type == napi_null;
}

int ConnectFd(napi_env env, int fd, int family, const std::string& ip, uint32_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseAddress(ip, port, &ss, &len) || ss.ss_family != family) {
    napi_throw_type_error(env, "ERR_INVALID_ADDRESS",
                          ("remote address " + FormatAddress(ip, port) + " is not an IP address of the local "
                           "address's family")
                              .c_str());
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ThrowSys(env, errno, "connect", ip, port);
    return -1;
  }
  return 0;
}

// open(localIp, localPort, remoteIp?, remotePort?): handle
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  if (argc < 2) {
    napi_throw_type_error(env, nullptr, "open(localIp, localPort, remoteIp?, remotePort?)");
    return nullptr;
  }
  std::string lip, rip;
  uint32_t lport, rport = 0;
  if (!GetString(env, argv[0], "localIp", &lip) || !GetPort(env, argv[1], "localPort", &lport)) return nullptr;
  bool connectNow = argc >= 4 && !IsNullish(env, argv[2]);
  if (connectNow && (!GetString(env, argv[2], "remoteIp", &rip) || !GetPort(env, argv[3], "remotePort", &rport)))
    return nullptr;
  if (t->freeList.empty() && t->socks.size() >= kMaxHandles) {
    napi_throw_error(env, "EMFILE", "transport handle table full (65536 sockets)");
    return nullptr;
  }
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseAddress(lip, lport, &ss, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ADDRESS", ("local address " + lip + " is not an IP address").c_str());
    return nullptr;
  }
  int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) {
    ThrowSys(env, errno, "socket", lip, lport);
    return nullptr;
  }
  int one = 1;
  // Exclusive bind: no SO_REUSEADDR / SO_REUSEPORT. Kernel receive stamps and queue-drop counts ride on every datagram.
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  // The kernel doubles it (bookkeeping overhead) and caps it at net.core.rmem_max; a refusal keeps the default.
  if (t->recvBufferBytes > 0) {
    int bytes = int(t->recvBufferBytes);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    ::close(fd);
    ThrowSys(env, err, "bind", lip, lport);
    return nullptr;
  }
  if (connectNow && ConnectFd(env, fd, ss.ss_family, rip, rport) != 0) {
    ::close(fd);
    return nullptr;
  }
  uint32_t idx;
  if (!t->freeList.empty()) {
    idx = t->freeList.back();
    t->freeList.pop_back();
  } else {
    idx = uint32_t(t->socks.size());
    t->socks.emplace_back();
  }
  Sock& s = t->socks[idx];
  s.Reset(fd);
  int32_t handle = t->HandleOf(idx);
  if (t->uring) {
    if (!t->UringArm(idx)) {
      ::close(fd);
      s.Reset(-1);
      t->freeList.push_back(idx);
      ThrowSys(env, EBUSY, "io_uring recvmsg", lip, lport);
      return nullptr;
    }
    t->UringSubmit();
  } else {
    epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;  // level-triggered: a socket left with data (fairness cap) is reported again
    ev.data.u32 = uint32_t(handle);
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      int err = errno;
      ::close(fd);
      s.Reset(-1);
      t->freeList.push_back(idx);
      ThrowSys(env, err, "epoll_ctl", lip, lport);
      return nullptr;
    }
  }
  t->openCount++;
  t->stats[kStatOpenSockets] = t->openCount;
  t->SetStrong(true);
  t->UpdatePolling();
  napi_value out;
  napi_create_int32(env, handle, &out);
  return out;
}

// connect(handle, remoteIp, remotePort): void
napi_value Connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  int32_t h = 0;
  std::string rip;
  uint32_t rport;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &h) != napi_ok) {
    napi_throw_type_error(env, nullptr, "connect(handle, remoteIp, remotePort)");
    return nullptr;
  }
  Sock* s = t->Lookup(h);
  if (s == nullptr) {
    napi_throw_error(env, "ERR_BAD_HANDLE", "connect: no open socket with this handle");
    return nullptr;
  }
  if (!GetString(env, argv[1], "remoteIp", &rip) || !GetPort(env, argv[2], "remotePort", &rport)) return nullptr;
  sockaddr_storage self;
  socklen_t slen = sizeof self;
  getsockname(s->fd, reinterpret_cast<sockaddr*>(&self), &slen);
  ConnectFd(env, s->fd, self.ss_family, rip, rport);
  return nullptr;
}

// localPort(handle): number
napi_value LocalPort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  int32_t h = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &h) != napi_ok || t->Lookup(h) == nullptr) {
    napi_throw_error(env, "ERR_BAD_HANDLE", "localPort: no open socket with this handle");
    return nullptr;
  }
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getsockname(t->Lookup(h)->fd, reinterpret_cast<sockaddr*>(&ss), &len);
  uint32_t port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  napi_value out;
  napi_create_uint32(env, port, &out);
  return out;
}

// close(handle): boolean (false: not an open handle of this transport)
napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Transport* t = Unwrap(env, info, &argc, argv, false);
  if (t == nullptr) return nullptr;
  int32_t h = 0;
  bool closed = false;
  if (argc >= 1 && napi_get_value_int32(env, argv[0], &h) == napi_ok && !t->destroyed && t->Lookup(h) != nullptr) {
    t->CloseIndex(uint32_t(h) & 0xffff);
    closed = true;
    if (t->openCount == 0) {
      t->UpdatePolling();
      t->UpdateStrong();  // a running ticker keeps it
    }
  }
  napi_value out;
  napi_get_boolean(env, closed, &out);
  return out;
}

// sendBatch(count): number of datagrams handed to the kernel. Entry i of `batch` is (handle, offset, length) into
// sendArena. Failures are counted in stats and in the socket's sendFailed / lastFailedSeq, never thrown. epoll: the
// count is what send(2) accepted. io_uring: what was queued; the kernel's refusals are SEND completions, reaped by
// the next drain or settle(). With either engine the payload has been copied into the kernel when this returns, so
// the arena bytes are JS's again.
napi_value SendBatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  uint32_t count = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &count) != napi_ok || count > t->batchCapacity) {
    napi_throw_range_error(env, nullptr, "sendBatch(count): count must be an integer in [0, batchCapacity]");
    return nullptr;
  }
  if (!t->BufferAlive(t->sendArenaRef) || !t->BufferAlive(t->batchBufRef) || !t->BufferAlive(t->statsBufRef)) {
    napi_throw_error(env, "ERR_DETACHED", "sendBatch: the send arena, batch or stats buffer was detached");
    return nullptr;
  }
  uint32_t ok = 0;
  double* st = t->stats;
  const int32_t* b = t->batch;
  if (t->uring) {
    // One SEND entry per datagram, one io_uring_enter for the batch. MSG_DONTWAIT sets REQ_F_NOWAIT: a full socket
    // buffer fails the entry with EAGAIN at once instead of parking it for poll or io-wq (the arena bytes are reused
    // next tick), so every entry is issued inline in the enter and its payload copied into an skb before it returns
    // (the test 'sendBatch has copied the payload when it returns' overwrites the arena right after and checks).
    // Only failures post a completion, counted (globally and for the socket) when the next drain reaps them.
    for (uint32_t i = 0; i < count; i++) {
      const int32_t h = b[3 * i], off = b[3 * i + 1], len = b[3 * i + 2];
      Sock* s = t->Lookup(h);
      if (s == nullptr || off < 0 || len < 0 || size_t(off) + size_t(len) > t->sendArenaBytes) {
        st[kStatSendBadEntry]++;
        if (s != nullptr) Transport::NoteSendFailure(s, -1);  // a range outside the arena: no bytes to read
        continue;
      }
      const int32_t seq = RtpSeq(t->sendArena + off, size_t(len));
      io_uring_sqe* e = t->UringSqe();
      if (e == nullptr) {
        st[kStatSendEagain]++;
        Transport::NoteSendFailure(s, seq);
        continue;
      }
      memset(e, 0, sizeof *e);
      e->opcode = IORING_OP_SEND;
      e->fd = s->fd;
      e->addr = reinterpret_cast<uint64_t>(t->sendArena + off);
      e->len = uint32_t(len);
      e->msg_flags = MSG_DONTWAIT;
      e->flags = IOSQE_CQE_SKIP_SUCCESS;
      e->user_data = SendUserData(h, seq);
      ok++;
    }
    t->UringSubmit();
    ok -= t->UringUnqueueSends();
    st[kStatSent] += ok;
    napi_value out;
    napi_create_uint32(env, ok, &out);
    return out;
  }
  for (uint32_t i = 0; i < count; i++) {
    const int32_t h = b[3 * i], off = b[3 * i + 1], len = b[3 * i + 2];
    Sock* s = t->Lookup(h);
    if (s == nullptr || off < 0 || len < 0 || size_t(off) + size_t(len) > t->sendArenaBytes) {
      st[kStatSendBadEntry]++;
      if (s != nullptr) Transport::NoteSendFailure(s, -1);
      continue;
    }
    ssize_t r;
    do {
      r = ::send(s->fd, t->sendArena + off, size_t(len), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
      ok++;
      continue;
    }
    int err = errno;
    st[kStatLastSendErrno] = err;
    Transport::NoteSendFailure(s, RtpSeq(t->sendArena + off, size_t(len)));
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
      st[kStatSendEagain]++;
    else if (err == ECONNREFUSED)
      st[kStatSendConnRefused]++;
    else
      st[kStatSendOtherError]++;
  }
  st[kStatSent] += ok;
  napi_value out;
  napi_create_uint32(env, ok, &out);
  return out;
}

// settle(): number. Synchronously reaps what is already there, exactly as polls would: io_uring completions (send
// failures included, counted for their sockets) and every datagram already queued on the sockets, delivered through
// onReceive (or counted droppedNoCallback). Returns the datagrams delivered. Called right before a call's sockets
// close, it makes every send's fate and every arrival known to socketStats and the receive callback.
//   - From inside a drain (the receive callback, or a microtask it queued when a poll runs the drain: Node runs
//     those inside napi_make_callback) it does nothing and returns -1: the drain owns the CQ head and the ring
//     entries until it returns. Call it again from outside (a timer, the ticker).
//   - A receive callback that throws stops it, and settle() throws that exception.
//   - Destroyed: returns 0.
napi_value Settle(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  double n = 0;
  if (t->inDrain) {
    n = -1;
  } else if (!t->destroyed) {
    if (!t->BufferAlive(t->statsBufRef)) {
      napi_throw_error(env, "ERR_DETACHED", "settle: the stats buffer was detached");
      return nullptr;
    }
    n = t->Settle();
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return nullptr;  // the receive callback's exception, to settle()'s caller
  }
  napi_value out;
  napi_create_double(env, n, &out);
  return out;
}

// socketStats(handle, out: Float64Array): boolean. Fills out[0 .. kSockStatCount) with the socket's counters (see
// SockStat; receiveDrops is read from the kernel now, exact). false, and `out` untouched, when the handle is not an
// open socket of this transport: the counters go with the socket. No allocation: one getsockopt per call.
napi_value SocketStats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Transport* t = Unwrap(env, info, &argc, argv, false);
  if (t == nullptr) return nullptr;
  int32_t h = 0;
  bool isTyped = false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &h) != napi_ok ||
      napi_is_typedarray(env, argv[1], &isTyped) != napi_ok || !isTyped ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array || length < size_t(kSockStatCount) || data == nullptr) {
    napi_throw_type_error(env, nullptr, "socketStats(handle, out): out must be a Float64Array of at least 4 entries");
    return nullptr;
  }
  Sock* s = t->destroyed ? nullptr : t->Lookup(h);
  if (s != nullptr) {
    t->SampleDrops(s);
    double* o = static_cast<double*>(data);
    o[kSockSendFailed] = s->sendFailed;
    o[kSockLastFailedSeq] = s->lastFailedSeq;
    o[kSockReceiveDrops] = s->receiveDrops;
    o[kSockTruncated] = s->truncated;
  }
  napi_value out;
  napi_get_boolean(env, s != nullptr, &out);
  return out;
}

// onReceive(callback | null): void
napi_value OnReceive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  DropRef(env, &t->callback);
  if (argc >= 1 && !IsNullish(env, argv[0])) {
    napi_valuetype type;
    napi_typeof(env, argv[0], &type);
    if (type != napi_function) {
      napi_throw_type_error(env, nullptr, "onReceive(callback): callback must be a function or null");
      return nullptr;
    }
    NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &t->callback));
  }
  return nullptr;
}

// startTicker(periodUs, callback(expirations)): calls back every periodUs microseconds (a periodic CLOCK_MONOTONIC
// timerfd), once per readiness of the timerfd: `expirations` > 1 when the thread was busy for more than a period.
// Starting a running ticker re-arms it with the new period and callback. While it runs the JS object is held and
// the handle keeps the loop alive, like a running setInterval; stopped, it does neither.
//
// Why a timerfd and not an io_uring timeout (IORING_OP_TIMEOUT, multishot since 6.4): the epoll engine needs the
// timerfd anyway, so one mechanism serves both; its own uv_poll_t keeps the tick independent of the receive
// drain (a tick never waits behind, or runs inside, a drain); and the only extra cost is one 8-byte read(2) per
// tick. A timeout CQE would save that read but add a second tick path, ordering against receive completions and
// a kernel-version probe.
napi_value StartTicker(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  Transport* t = Unwrap(env, info, &argc, argv);
  if (t == nullptr) return nullptr;
  double us = 0;
  napi_valuetype type = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &type);
  if (argc < 2 || napi_get_value_double(env, argv[0], &us) != napi_ok || !(us >= 10 && us <= 10e6) ||
      type != napi_function) {
    napi_throw_range_error(env, nullptr,
                           "startTicker(periodUs, callback): periodUs in [10, 10000000], callback a function");
    return nullptr;
  }
  napi_ref cb = nullptr;
  NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &cb));
  int err = t->StartTick(uint64_t(us * 1000 + 0.5));
  if (err != 0) {
    napi_delete_reference(env, cb);
    napi_throw_error(env, uv_err_name(-err), (std::string("startTicker: ") + strerror(err)).c_str());
    return nullptr;
  }
  DropRef(env, &t->tickCallback);
  t->tickCallback = cb;
  t->UpdateStrong();
  return nullptr;
}

// stopTicker(): no callback after it returns (also when called from the callback). Idempotent; a no-op once
// destroyed.
napi_value StopTicker(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  t->StopTick();
  DropRef(env, &t->tickCallback);
  t->UpdateStrong();
  return nullptr;
}

// A boolean property of the transport (ticking, destroyed); readable also once destroyed.
template <bool Transport::*Field>
napi_value GetFlag(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  napi_value out;
  napi_get_boolean(env, t->*Field, &out);
  return out;
}

// setTimeOrigin(ms): CLOCK_MONOTONIC milliseconds at performance.now() == 0.
napi_value SetTimeOrigin(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  Transport* t = Unwrap(env, info, &argc, argv, false);
  if (t == nullptr) return nullptr;
  double d;
  if (argc < 1 || napi_get_value_double(env, argv[0], &d) != napi_ok) {
    napi_throw_type_error(env, nullptr, "setTimeOrigin(ms)");
    return nullptr;
  }
  t->originMs = d;
  return nullptr;
}

// destroy(): closes every socket and the epoll fd. Idempotent.
napi_value Destroy(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  t->Shutdown(false);
  DropRef(env, &t->callback);
  DropRef(env, &t->tickCallback);
  return nullptr;
}

napi_value GetEngine(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  napi_value out;
  napi_create_string_utf8(env, t->engineIsUring ? "io_uring" : "epoll", NAPI_AUTO_LENGTH, &out);
  return out;
}

napi_value GetEngineNote(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  Transport* t = Unwrap(env, info, &argc, nullptr, false);
  if (t == nullptr) return nullptr;
  napi_value out;
  napi_create_string_utf8(env, t->engineNote.c_str(), NAPI_AUTO_LENGTH, &out);
  return out;
}

napi_value MonotonicNowMs(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_create_double(env, MonotonicMs(), &out);
  return out;
}

// setThreadPriority(fifoPriority): 1-99 makes the CALLING thread SCHED_FIFO at that priority, 0 puts it back to
// SCHED_OTHER. Returns '' or the errno name (EPERM without root or CAP_SYS_NICE): a refusal is the caller's to
// report, not an exception.
//
// Why: a media thread that sleeps between 0.5 ms ticks competes under CFS with the process's rarely running helper
// threads (V8 platform workers, libuv's pool). A helper that wakes after a long sleep gets a vruntime credit, so the
// media thread's wakeup does not preempt it and the tick waits for the helper's slice: perf sched showed 4 ms waits,
// which set the send-lateness p99 (2.5-4 ms at 500 calls). A FIFO thread preempts CFS threads at once; the kernel's
// RT throttling (sched_rt_runtime_us, 95% by default) still leaves CPU to others if the thread saturates.
napi_value SetThreadPriority(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  double value = -1;
  if (argc < 1 || napi_get_value_double(env, argv[0], &value) != napi_ok || !(value >= 0 && value <= 99) ||
      value != double(int(value))) {
    napi_throw_range_error(env, nullptr, "setThreadPriority(fifoPriority): 0 (normal) or 1-99 (SCHED_FIFO)");
    return nullptr;
  }
  int prio = int(value);
  sched_param param;
  memset(&param, 0, sizeof param);
  param.sched_priority = prio;
  int rc = pthread_setschedparam(pthread_self(), prio == 0 ? SCHED_OTHER : SCHED_FIFO, &param);
  napi_value out;
  napi_create_string_utf8(env, rc == 0 ? "" : uv_err_name(-rc), NAPI_AUTO_LENGTH, &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"connect", nullptr, Connect, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"localPort", nullptr, LocalPort, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"sendBatch", nullptr, SendBatch, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"settle", nullptr, Settle, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"socketStats", nullptr, SocketStats, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"onReceive", nullptr, OnReceive, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"setTimeOrigin", nullptr, SetTimeOrigin, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"destroy", nullptr, Destroy, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"startTicker", nullptr, StartTicker, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"stopTicker", nullptr, StopTicker, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"ticking", nullptr, nullptr, GetFlag<&Transport::ticking>, nullptr, nullptr, napi_default, nullptr},
      {"destroyed", nullptr, nullptr, GetFlag<&Transport::destroyed>, nullptr, nullptr, napi_default, nullptr},
      {"engine", nullptr, nullptr, GetEngine, nullptr, nullptr, napi_default, nullptr},
      {"engineNote", nullptr, nullptr, GetEngineNote, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "Transport", NAPI_AUTO_LENGTH, New, nullptr,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "Transport", cls));

  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "monotonicNowMs", NAPI_AUTO_LENGTH, MonotonicNowMs, nullptr, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "monotonicNowMs", fn));
  NAPI_CALL(env, napi_create_function(env, "setThreadPriority", NAPI_AUTO_LENGTH, SetThreadPriority, nullptr, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "setThreadPriority", fn));

  napi_value names;
  NAPI_CALL(env, napi_create_array_with_length(env, kStatCount, &names));
  for (uint32_t i = 0; i < kStatCount; i++) {
    napi_value s;
    napi_create_string_utf8(env, kStatNames[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, names, i, s);
  }
  NAPI_CALL(env, napi_set_named_property(env, exports, "statNames", names));
  NAPI_CALL(env, napi_create_array_with_length(env, kSockStatCount, &names));
  for (uint32_t i = 0; i < kSockStatCount; i++) {
    napi_value s;
    napi_create_string_utf8(env, kSockStatNames[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, names, i, s);
  }
  NAPI_CALL(env, napi_set_named_property(env, exports, "socketStatNames", names));
  napi_value v;
  napi_create_uint32(env, kMetaStride, &v);
  napi_set_named_property(env, exports, "recvMetaStride", v);
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() { return Init(env, exports); }
