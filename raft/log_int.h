/*
** raft/log_int.h: internals of the segmented log store (raft/log.c and
** raft/log_crc.c). No other folder includes this file; tests of raft/ may.
**
** On-disk format (all integers little-endian):
**   segment file  <dir>/<seq as 20 decimal digits>.rlog, seq = 1, 2, 3...
**                 with no gaps among the live files (the oldest are deleted
**                 first by purge).
**   segment header (RAFT__LOG_SEGMENT_HEADER_BYTES = 32):
**       0  "MRDNRLG1"          magic
**       8  u32 version (1)
**      12  u32 header bytes (32)
**      16  u64 seq             must equal the number in the file name
**      24  u32 crc32c of bytes [0, 24)
**      28  u32 zero
**   record (RAFT__LOG_RECORD_HEADER_BYTES = 36, then the payload):
**       0  u32 crc32c of bytes [4, 36 + len)
**       4  u32 len             payload bytes
**       8  u8  kind            raft__log_kind
**       9  u8  entry type      raft_entry_type (entries), else 0
**      10  u16 zero
**      12  u64 group
**      20  u64 term            entry term / hard state term / compact term
**      28  u64 index           entry index / commit / truncate from / compact up to
**      36  payload             entry data; hard state: u64 vote; else empty
*/
#ifndef MERIDIAN_RAFT_LOG_INT_H
#define MERIDIAN_RAFT_LOG_INT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT__LOG_MAGIC "MRDNRLG1"
#define RAFT__LOG_VERSION 1u
#define RAFT__LOG_SEGMENT_HEADER_BYTES 32u
#define RAFT__LOG_RECORD_HEADER_BYTES 36u
#define RAFT__LOG_SEGMENT_SUFFIX ".rlog"
#define RAFT__LOG_SEGMENT_NAME_DIGITS 20

#define RAFT__LOG_DEFAULT_SEGMENT_BYTES (64u << 20)
#define RAFT__LOG_DEFAULT_RECORD_BYTES (16u << 20)
#define RAFT__LOG_DEFAULT_GROUPS 65536u
#define RAFT__LOG_DEFAULT_SEGMENTS 1024u
#define RAFT__LOG_MIN_SEGMENT_BYTES 4096u
/* Entries in one raft_log_append call. */
#define RAFT__LOG_APPEND_ENTRIES_MAX 65536u

typedef enum raft__log_kind {
    RAFT__LOG_KIND_ENTRY = 1,
    RAFT__LOG_KIND_HARD_STATE = 2,
    RAFT__LOG_KIND_TRUNCATE = 3,
    RAFT__LOG_KIND_COMPACT = 4,
} raft__log_kind;

/* Checksums: base_crc32c (base/base.h). */

#endif
