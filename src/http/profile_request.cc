#include "http/profile_request.h"

#include <chrono>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <boost/asio/steady_timer.hpp>

#include "http/responses.h"
#include "http/server_state.h"
#include "http/session.h"
#include "profile/pprof_encoder.h"

namespace cpprof::http {
namespace {

namespace asio = boost::asio;

Response refusal_response(const Refusal& refusal, const std::string& name) {
  const int code = refusal.status >= 400 && refusal.status <= 599 ? refusal.status : 503;
  return error_response(static_cast<Status>(code), refusal.message.empty()
                                                       ? "profile " + name + " is unavailable"
                                                       : refusal.message);
}

// Runs `fn` (on the worker), turning an exception into a 500 as Go does
// (a CollectionRefused into its refusal). `fn` returns the answer, or
// nullopt when it has none to give yet.
template <class Fn>
std::optional<Response> guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const CollectionRefused& e) {
    return refusal_response(e.refusal(), "");
  } catch (const std::exception& e) {
    return error_response(Status::internal_server_error,
                          std::string("failed to collect profile: ") + e.what());
  } catch (...) {
    return error_response(Status::internal_server_error, "failed to collect profile");
  }
}

// Opens and finishes a collection at once: nullopt with the profile in
// `out`, or the answer to send instead (the entry's refusal).
std::optional<Response> take_snapshot(const ProfileEntry& entry, profile::Profile* out) {
  Refusal refusal;
  std::unique_ptr<Collection> collection = entry.open ? entry.open(&refusal) : nullptr;
  if (!collection) return refusal_response(refusal, entry.name);
  *out = collection->finish();
  return std::nullopt;
}

Response encode(const ProfileEntry& entry, const profile::Profile& profile, int debug,
                const std::string& filename) {
  if (debug == 0) return binary_response(filename, profile::encode_pprof_gz(profile));
  return text_response(entry.write_text(profile, debug));
}

// For entries that write text from a collection: opens one and answers
// its text (or the entry's refusal).
Response snapshot_text(const ProfileEntry& entry, int debug) {
  Refusal refusal;
  std::unique_ptr<Collection> collection = entry.open ? entry.open(&refusal) : nullptr;
  if (!collection) return refusal_response(refusal, entry.name);
  return text_response(entry.write_collection_text(*collection, debug));
}

// Hands `response` from the worker to the io thread, which sends it.
void respond_from_worker(ServerState& state, std::shared_ptr<Session> session, Response response) {
  // The last reference to the session must drop on the io thread: move it.
  state.on_io([session = std::move(session), response = std::move(response)]() mutable {
    session->respond(std::move(response));
  });
}

// A window or a delta in progress. Kept alive by its timer's handler and by
// the worker job it posted; the session only holds a weak reference (to
// report a disconnect), so nothing keeps it alive in a cycle.
class WindowRequest : public std::enable_shared_from_this<WindowRequest> {
 public:
  WindowRequest(ServerState& state, std::shared_ptr<Session> session, const ProfileEntry& entry,
                int debug, WindowSlot slot)
      : state_(state),
        session_(std::move(session)),
        entry_(entry),
        debug_(debug),
        slot_(std::move(slot)),
        timer_(state.io) {}

  void start_window(int seconds, std::unique_ptr<Collection> collection) {
    collection_ = std::move(collection);
    watch();
    wait(seconds, &WindowRequest::finish_window);
  }

  void start_delta(int seconds) {
    watch();
    state_.on_worker([self = shared_from_this(), seconds]() mutable {
      profile::Profile first;
      std::optional<Response> error = guarded([&] { return take_snapshot(self->entry_, &first); });
      ServerState& state = self->state_;
      state.on_io([self = std::move(self), seconds, first = std::move(first),
                   error = std::move(error)]() mutable {
        if (self->abandoned_) return;
        if (error) return self->respond(std::move(*error));
        self->first_ = std::move(first);
        self->wait(seconds, &WindowRequest::finish_delta);
      });
    });
  }

 private:
  void watch() {
    session_->watch_for_disconnect([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->abandon();
    });
  }

  void wait(int seconds, void (WindowRequest::*then)()) {
    timer_.expires_after(std::chrono::seconds(seconds));
    timer_.async_wait([self = shared_from_this(), then](boost::system::error_code ec) {
      if (!ec && !self->abandoned_) ((*self).*then)();
    });
  }

  // The client went away: stop waiting and drop the collection now.
  void abandon() {
    abandoned_ = true;
    timer_.cancel();
    collection_.reset();
    first_ = profile::Profile();
  }

  void finish_window() {
    state_.on_worker([self = shared_from_this(), collection = std::move(collection_)]() mutable {
      std::optional<Response> response = guarded([&]() -> std::optional<Response> {
        if (self->debug_ != 0 && self->entry_.write_collection_text) {
          return text_response(self->entry_.write_collection_text(*collection, self->debug_));
        }
        profile::Profile profile = collection->finish();
        collection.reset();  // on the worker, before the (possibly long) encoding
        return encode(self->entry_, profile, self->debug_, self->entry_.name);
      });
      collection.reset();
      post_response(std::move(self), std::move(*response));
    });
  }

  void finish_delta() {
    state_.on_worker([self = shared_from_this(), first = std::move(first_)]() mutable {
      std::optional<Response> response = guarded([&]() -> std::optional<Response> {
        profile::Profile later;
        if (std::optional<Response> error = take_snapshot(self->entry_, &later)) return error;
        profile::Profile delta = self->entry_.delta(first, later);
        // As Go: stamped with the later snapshot, lasting from the earlier.
        if (first.time_nanos != 0 && later.time_nanos != 0) {
          delta.time_nanos = later.time_nanos;
          delta.duration_nanos = later.time_nanos - first.time_nanos;
        }
        return encode(self->entry_, delta, 0, self->entry_.name + "-delta");
      });
      post_response(std::move(self), std::move(*response));
    });
  }

  // Worker side: hands the answer to the io thread, giving up `self` there.
  static void post_response(std::shared_ptr<WindowRequest> self, Response response) {
    ServerState& state = self->state_;
    state.on_io([self = std::move(self), response = std::move(response)]() mutable {
      self->respond(std::move(response));
    });
  }

  void respond(Response response) {
    if (abandoned_) return;
    session_->respond(std::move(response));
  }

  ServerState& state_;
  const std::shared_ptr<Session> session_;
  const ProfileEntry& entry_;
  const int debug_;
  const WindowSlot slot_;
  asio::steady_timer timer_;
  std::unique_ptr<Collection> collection_;  // during a window
  profile::Profile first_;                  // during a delta's wait
  bool abandoned_ = false;
};

void serve_snapshot(ServerState& state, const std::shared_ptr<Session>& session,
                    const ProfileEntry& entry, int debug) {
  state.on_worker([&state, session, &entry, debug]() mutable {
    std::optional<Response> response = guarded([&]() -> std::optional<Response> {
      if (debug != 0 && entry.write_collection_text) return snapshot_text(entry, debug);
      profile::Profile profile;
      if (std::optional<Response> error = take_snapshot(entry, &profile)) return error;
      return encode(entry, profile, debug, entry.name);
    });
    respond_from_worker(state, std::move(session), std::move(*response));
  });
}

}  // namespace

void serve_profile(ServerState& state, const std::shared_ptr<Session>& session,
                   const ProfileEntry& entry, const std::vector<QueryParam>& params) {
  // Without a text writer no debug level but 0 is offered, whatever the entry lists.
  std::span<const int> levels;
  if (writes_text(entry)) levels = entry.text_debug_levels;
  ProfileParams checked;
  std::string error;
  if (!check_profile_params(params, state.config.max_seconds, levels, &checked, &error)) {
    return session->respond(error_response(Status::bad_request, error));
  }
  const bool windowed = entry.default_seconds > 0;
  if (!windowed && checked.seconds == 0)
    return serve_snapshot(state, session, entry, checked.debug);
  if (!windowed && !entry.delta) {
    return session->respond(error_response(
        Status::bad_request, R"("seconds" parameter is not supported for this profile type)"));
  }
  std::optional<WindowSlot> slot =
      WindowSlot::try_acquire(state.windows_in_use, state.config.max_windows);
  if (!slot) {
    return session->respond(error_response(
        Status::service_unavailable,
        "too many profiles in progress (max_windows=" + std::to_string(state.config.max_windows) +
            "); try again later"));
  }
  if (!windowed) {
    std::make_shared<WindowRequest>(state, session, entry, 0, std::move(*slot))
        ->start_delta(checked.seconds);
    return;
  }
  Refusal refusal;
  std::unique_ptr<Collection> collection = entry.open ? entry.open(&refusal) : nullptr;
  if (!collection) return session->respond(refusal_response(refusal, entry.name));
  const int seconds = checked.seconds > 0 ? checked.seconds : entry.default_seconds;
  std::make_shared<WindowRequest>(state, session, entry, checked.debug, std::move(*slot))
      ->start_window(seconds, std::move(collection));
}

}  // namespace cpprof::http
