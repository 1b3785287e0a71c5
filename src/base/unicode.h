/* UTF-8 decoding/encoding and the byte <-> character map of byte-level BPE (GPT-2). */
#ifndef HAI_UNICODE_H
#define HAI_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when the bytes there are not
 * valid UTF-8 (bad lead byte, bad continuation, overlong, surrogate, > U+10FFFF, truncated). */
int hai_utf8_valid_len(const unsigned char *s, size_t n, uint32_t *cp);

/* Length a lead byte announces (1..4); 1 for bytes that cannot start a sequence. */
static inline int hai_utf8_lead_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xC2 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 1;
}

/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
int hai_utf8_encode(uint32_t cp, char *out);

/* Byte-level BPE: the character (as UTF-8, NUL-terminated, <= 2 bytes) that stands for byte b,
 * and the byte a character stands for (-1 when it stands for none). */
const char *hai_bytelevel_char(uint8_t b);
int hai_bytelevel_byte(uint32_t cp);

#endif
