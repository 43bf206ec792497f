/*
** base/crc32c.c: CRC32C (Castagnoli), the one checksum of Meridian's
** formats: the Raft log's records (raft/log_int.h) and rpc/'s frames.
**
** Software: slicing-by-8 tables built once (racing initialisers write the
** same values; publication via an atomic flag). Hardware: the SSE4.2 crc32
** instruction, 8 bytes at a time, chosen at run time with
** __builtin_cpu_supports("sse4.2"); other CPUs use the software path.
** Invariant: both paths return identical values for every input (tested).
*/
#include "base/base.h"

#include <string.h>

static uint32_t crc_tables[8][256];
static int crc_tables_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_tables[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_tables[0][c & 0xff] ^ (c >> 8);
            crc_tables[t][i] = c;
        }
    }
    __atomic_store_n(&crc_tables_ready, 1, __ATOMIC_RELEASE);
}

uint32_t base__crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    if (!__atomic_load_n(&crc_tables_ready, __ATOMIC_ACQUIRE)) crc_init();
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_tables[7][lo & 0xff] ^ crc_tables[6][(lo >> 8) & 0xff] ^
            crc_tables[5][(lo >> 16) & 0xff] ^ crc_tables[4][lo >> 24] ^
            crc_tables[3][hi & 0xff] ^ crc_tables[2][(hi >> 8) & 0xff] ^
            crc_tables[1][(hi >> 16) & 0xff] ^ crc_tables[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) c = crc_tables[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *data,
                                                          size_t len)
{
    const uint8_t *p = data;
    uint64_t c = (uint32_t)~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

int base__crc32c_hw_available(void)
{
    static int cached = -1; /* racing writers store the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

uint32_t base__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    if (!base__crc32c_hw_available()) return base__crc32c_sw(crc, data, len);
    return crc_hw(crc, data, len);
}
#else
int base__crc32c_hw_available(void) { return 0; }
uint32_t base__crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return base__crc32c_sw(crc, data, len);
}
#endif

uint32_t base_crc32c(uint32_t crc, const void *data, size_t len)
{
    return base__crc32c_hw(crc, data, len);
}
