// The HTTP responses the server sends, with exactly the headers Go's
// net/http/pprof sends, so that `go tool pprof`, Parca and Alloy treat them
// alike. Version and keep-alive are filled in by the session.
#pragma once

#include <string>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

namespace cpprof::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Status = boost::beast::http::status;

// Beast 1.74 speaks boost::string_view; these cross over without copying.
inline std::string_view to_std(boost::beast::string_view s) { return {s.data(), s.size()}; }
inline boost::beast::string_view to_beast(std::string_view s) { return {s.data(), s.size()}; }

// Go's serveError: text/plain, X-Go-Pprof: 1 (pprof then prints the body),
// the message on one line.
Response error_response(Status status, std::string_view message);

// A profile download: application/octet-stream, attachment; filename="<filename>".
Response binary_response(std::string_view filename, std::string body);

// Plain text (debug=N forms, /cmdline, /symbol): text/plain; charset=utf-8.
Response text_response(std::string body);

// The index page: text/html; charset=utf-8.
Response html_response(std::string body);

// An embedded UI asset, typed by its file name's extension.
Response asset_response(std::string_view name, std::string_view content);

// 301 to `location` (e.g. /debug/pprof -> /debug/pprof/, as Go's ServeMux does).
Response redirect_response(std::string_view location);

}  // namespace cpprof::http
