#include "interrupter.hpp"

#include <dlfcn.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <system_error>
#include <thread>

namespace pg2kafka::pg_outbox {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Interrupter::CancelJob {
  std::shared_ptr<PGcancel> cancel;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
};

namespace {

// Keeps the file holding this code loaded for the life of the process (dlclose does nothing
// after this): a cancel request thread that is still blocked when its source is destroyed
// returns into this code later.
void pin_this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&pin_this_library), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void send_cancel(PGcancel* cancel) {
  char ignored[256];
  PQcancel(cancel, ignored, sizeof ignored);
}

}  // namespace

Interrupter::Interrupter() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Interrupter::~Interrupter() {
  if (job_) {
    std::unique_lock lock(job_->mutex);
    bool done = job_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return job_->done; });
    lock.unlock();
    if (done) {
      job_->thread.join();
    } else {
      pin_this_library();
      job_->thread.detach();
    }
  }
  close(fd_);
}

void Interrupter::interrupt() noexcept {
  std::lock_guard lock(mutex_);
  if (interrupted_.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
  if (!running_) return;
  // A query is running: the server should stop it. PQcancel opens a connection to the server and
  // waits for it to close it, which takes as long as the network and the server want: on a
  // thread of its own.
  auto job = std::make_shared<CancelJob>();
  job->cancel = running_;
  try {
    job->thread = std::thread([job] {
      send_cancel(job->cancel.get());
      std::lock_guard done_lock(job->mutex);
      job->done = true;
      job->cv.notify_all();
    });
    job_ = std::move(job);
  } catch (...) {
    send_cancel(running_.get());  // no thread to be had: here, then
  }
}

bool Interrupter::sleep(milliseconds duration) const {
  auto deadline = Clock::now() + duration;
  while (!interrupted()) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return true;
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
  }
  return false;
}

bool Interrupter::query_started(std::shared_ptr<PGcancel> cancel) {
  std::lock_guard lock(mutex_);
  if (interrupted()) return false;
  running_ = std::move(cancel);
  return true;
}

void Interrupter::query_ended() {
  std::lock_guard lock(mutex_);
  running_.reset();
}

}  // namespace pg2kafka::pg_outbox
