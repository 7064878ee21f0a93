#include "app/server/http_util.h"

namespace strata::app::server {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void set_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), "application/json");
}

bool write(httplib::DataSink& sink, const std::string& data) {
    if (sink.is_writable && !sink.is_writable()) return false;
    return sink.write(data.data(), data.size());
}

void stream(httplib::Response& res, const char* content_type, std::function<void(httplib::DataSink&)> body) {
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    auto fn = std::make_shared<std::function<void(httplib::DataSink&)>>(std::move(body));
    res.set_chunked_content_provider(content_type, [fn](size_t, httplib::DataSink& sink) {
        (*fn)(sink);
        sink.done();
        return true;
    });
}

}  // namespace strata::app::server
