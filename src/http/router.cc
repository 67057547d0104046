#include "http/router.h"

#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "http/auth.h"
#include "http/index_page.h"
#include "http/plain_endpoints.h"
#include "http/profile_request.h"
#include "http/query.h"
#include "http/server_state.h"
#include "http/session.h"
#include "ui/assets.h"

namespace cpprof::http {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kPrefix = "/debug/pprof/";

// /symbol may call into libdw for many addresses: the worker does it.
void serve_symbol(ServerState& state, std::shared_ptr<Session> session, std::string input) {
  state.on_worker([&state, session = std::move(session), input = std::move(input)]() mutable {
    Response response;
    try {
      response = text_response(symbol_body(input, state.config.symbol_name));
    } catch (const std::exception& e) {
      response = error_response(Status::internal_server_error,
                                std::string("symbol lookup failed: ") + e.what());
    }
    state.on_io([session = std::move(session), response = std::move(response)]() mutable {
      session->respond(std::move(response));
    });
  });
}

Response index_page(ServerState& state) {
  std::vector<std::pair<std::string, std::string>> stats;
  if (state.config.index_stats) stats = state.config.index_stats();
  return html_response(render_index(ui::asset("index.html"), *state.registry, stats));
}

void route(ServerState& state, const std::shared_ptr<Session>& session, Request& request) {
  auto reply = [&session](Response response) { session->respond(std::move(response)); };
  if (!state.config.token.empty() &&
      !bearer_token_matches(to_std(request[bhttp::field::authorization]), state.config.token)) {
    Response response = error_response(
        Status::unauthorized, "unauthorized: this server needs \"Authorization: Bearer <token>\"");
    response.set(bhttp::field::www_authenticate, "Bearer realm=\"cpprof\"");
    return reply(std::move(response));
  }
  Target target;
  std::string error;
  if (!parse_target(to_std(request.target()), &target, &error)) {
    return reply(error_response(Status::bad_request, error));
  }
  if (target.path == kPrefix.substr(0, kPrefix.size() - 1)) {
    std::string location(kPrefix);
    if (!target.raw_query.empty()) location += "?" + target.raw_query;
    return reply(redirect_response(location));
  }
  if (target.path.compare(0, kPrefix.size(), kPrefix) != 0) {
    return reply(error_response(Status::not_found, "404 page not found"));
  }
  const std::string name = target.path.substr(kPrefix.size());
  const bool is_symbol = name == "symbol";
  const bhttp::verb method = request.method();
  if (method != bhttp::verb::get && method != bhttp::verb::head &&
      !(is_symbol && method == bhttp::verb::post)) {
    Response response = error_response(Status::method_not_allowed, "method not allowed");
    response.set(bhttp::field::allow, is_symbol ? "GET, HEAD, POST" : "GET, HEAD");
    return reply(std::move(response));
  }
  if (name.empty()) return reply(index_page(state));
  if (name == "cmdline") return reply(text_response(read_cmdline()));
  if (is_symbol) {
    std::string input = method == bhttp::verb::post ? std::move(request.body()) : target.raw_query;
    return serve_symbol(state, session, std::move(input));
  }
  if (name.compare(0, 3, "ui/") == 0) {
    std::string_view content = ui::asset(name.substr(3));
    if (name.size() == 3 || content.empty()) {
      return reply(error_response(Status::not_found, "Unknown asset"));
    }
    return reply(asset_response(name, content));
  }
  const ProfileEntry* entry =
      name.find('/') == std::string::npos ? state.registry->find(name) : nullptr;
  if (entry == nullptr) return reply(error_response(Status::not_found, "Unknown profile"));
  serve_profile(state, session, *entry, target.params);
}

}  // namespace

void route_request(ServerState& state, const std::shared_ptr<Session>& session, Request request) {
  // Callbacks (count, index_stats, open) may throw; the host must not die of it.
  try {
    route(state, session, request);
  } catch (const std::exception& e) {
    session->respond(
        error_response(Status::internal_server_error, std::string("internal error: ") + e.what()));
  } catch (...) {
    session->respond(error_response(Status::internal_server_error, "internal error"));
  }
}

}  // namespace cpprof::http
