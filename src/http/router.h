// Routes one parsed request: authentication, method, path, and the answer
// (immediately, or later via the worker for profiles and /symbol).
// Io thread only.
#pragma once

#include <memory>

#include "http/responses.h"

namespace cpprof::http {

class Session;
struct ServerState;

// Answers `request` on `session`: bearer token first (401), then the path:
// /debug/pprof (301 to /debug/pprof/), /debug/pprof/ (index), cmdline,
// symbol, ui/<asset>, or a registry entry (404 "Unknown profile" if none).
// GET and HEAD only, POST too for /symbol; 405 otherwise. Never throws.
void route_request(ServerState& state, const std::shared_ptr<Session>& session, Request request);

}  // namespace cpprof::http
