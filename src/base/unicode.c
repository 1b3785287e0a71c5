/* UTF-8 helpers and the GPT-2 byte-level character map. */
#include "unicode.h"

#include <pthread.h>

int hai_utf8_valid_len(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    uint32_t v;
    int len;
    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    } else if (c >= 0xC2 && c < 0xE0) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c < 0xF0) {
        len = 3, v = c & 0x0F;
    } else if (c >= 0xF0 && c < 0xF5) {
        len = 4, v = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    if (cp) *cp = v;
    return len;
}

int hai_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2's map: printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) stand for themselves; the other
 * 68 bytes take the code points 256, 257, ... in byte order. All fit in 2 UTF-8 bytes. */
static char byte_chars[256][3];
static int16_t cp_to_byte[512];
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static void build_map(void) {
    for (int i = 0; i < 512; i++) cp_to_byte[i] = -1;
    int next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)next++;
        int n = hai_utf8_encode(cp, byte_chars[b]);
        byte_chars[b][n] = '\0';
        cp_to_byte[cp] = (int16_t)b;
    }
}

const char *hai_bytelevel_char(uint8_t b) {
    pthread_once(&map_once, build_map);
    return byte_chars[b];
}

int hai_bytelevel_byte(uint32_t cp) {
    pthread_once(&map_once, build_map);
    return cp < 512 ? cp_to_byte[cp] : -1;
}
