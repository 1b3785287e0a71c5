#include "page.h"

#include <string.h>

extern const unsigned char page_index_html[], page_chat_css[], page_chat_js[];
extern const size_t page_index_html_len, page_chat_css_len, page_chat_js_len;

bool page_find(const char *url, page_asset *out) {
    if (!strcmp(url, "/")) *out = (page_asset){"text/html; charset=utf-8", page_index_html, page_index_html_len};
    else if (!strcmp(url, "/chat.js")) *out = (page_asset){"text/javascript; charset=utf-8", page_chat_js, page_chat_js_len};
    else if (!strcmp(url, "/chat.css")) *out = (page_asset){"text/css; charset=utf-8", page_chat_css, page_chat_css_len};
    else return false;
    return true;
}
