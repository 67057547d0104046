#include "http/responses.h"

#include <utility>

namespace cpprof::http {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

Response base_response(Status status) {
  Response response(status, 11);
  response.set("X-Content-Type-Options", "nosniff");
  return response;
}

std::string_view content_type_for(std::string_view name) {
  auto ends_with = [name](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".svg")) return "image/svg+xml";
  if (ends_with(".json")) return "application/json";
  if (ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

}  // namespace

Response error_response(Status status, std::string_view message) {
  Response response = base_response(status);
  response.set(bhttp::field::content_type, to_beast(kPlainText));
  response.set("X-Go-Pprof", "1");
  std::string body(message);
  // One line, whatever a callback put into its refusal.
  for (char& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  body.push_back('\n');
  response.body() = std::move(body);
  return response;
}

Response binary_response(std::string_view filename, std::string body) {
  Response response = base_response(Status::ok);
  response.set(bhttp::field::content_type, "application/octet-stream");
  response.set(bhttp::field::content_disposition,
               "attachment; filename=\"" + std::string(filename) + "\"");
  response.body() = std::move(body);
  return response;
}

Response text_response(std::string body) {
  Response response = base_response(Status::ok);
  response.set(bhttp::field::content_type, to_beast(kPlainText));
  response.body() = std::move(body);
  return response;
}

Response html_response(std::string body) {
  Response response = base_response(Status::ok);
  response.set(bhttp::field::content_type, "text/html; charset=utf-8");
  response.body() = std::move(body);
  return response;
}

Response asset_response(std::string_view name, std::string_view content) {
  Response response = base_response(Status::ok);
  response.set(bhttp::field::content_type, to_beast(content_type_for(name)));
  response.body() = std::string(content);
  return response;
}

Response redirect_response(std::string_view location) {
  Response response = base_response(Status::moved_permanently);
  response.set(bhttp::field::location, to_beast(location));
  response.set(bhttp::field::content_type, to_beast(kPlainText));
  response.body() = "Moved Permanently.\n";
  return response;
}

}  // namespace cpprof::http
