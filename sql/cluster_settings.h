/*
** sql/cluster_settings.h: cluster settings (docs/operations.md "Cluster
** settings"): one table of typed settings, their text forms, their codec
** and their place in the key space. Public: sql/ answers SET / RESET /
** SHOW CLUSTER SETTING(S) with it, and server/ reads the stored values
** into each node's memory (server/srv_splitq.c). It sits in sql/ because
** sql/ is the lowest layer that needs the names and server/ is above it.
**
** Key space (system keys of range 1, one key per setting that was SET):
**   SQLV_SETTING_PREFIX | name  ->  u8 version (1) | u8 type | i64 value
** (big-endian), or for a text setting u8 version (1) | u8 type | the text.
** A setting without a key has its default; RESET deletes the key. Values
** are in the type's unit: bytes, a count, milliseconds, 0/1; a text
** setting's value is its length in bytes, its text is kept beside it.
**
** Invariants:
**   - a stored value always passed sqlv_setting_parse's checks for its
**     setting (type and [min, max]); a reader that finds anything else
**     (a bad version, another type, out of range, an unknown name: written
**     by another version) ignores it, logs it, and uses the default;
**   - the text sqlv_setting_format gives parses back to the same value.
*/
#ifndef MERIDIAN_SQL_CLUSTER_SETTINGS_H
#define MERIDIAN_SQL_CLUSTER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "security/security.h"
#include "txn/txn.h"

typedef enum sqlv_setting_type {
    SQLV_SETTING_BYTES = 1,    /* '64MiB', '512 KiB', '1.5GB', 65536 */
    SQLV_SETTING_INT = 2,      /* 2500 */
    SQLV_SETTING_DURATION = 3, /* '10s', '1m30s', '250ms'; stored as ms */
    SQLV_SETTING_BOOL = 4,     /* true/false, on/off, yes/no, 1/0 */
    SQLV_SETTING_TEXT = 5,     /* a string, checked by the setting's own parser */
} sqlv_setting_type;

typedef enum sqlv_setting_id {
    SQLV_SETTING_RANGE_MAX_BYTES = 0,   /* a range above it splits (size-based) */
    SQLV_SETTING_RANGE_MIN_BYTES = 1,   /* adjacent ranges below it merge (the merge queue) */
    SQLV_SETTING_SPLIT_QPS_THRESHOLD = 2, /* load-based splits (later) */
    SQLV_SETTING_REBALANCE_ENABLED = 3, /* the rebalancer runs */
    SQLV_SETTING_SPLIT_ENABLED = 4,     /* the split queue runs */
    SQLV_SETTING_MERGE_ENABLED = 5,     /* the merge queue runs */
    SQLV_SETTING_REBALANCE_COOLDOWN = 6, /* a range the rebalancer moved rests this long */
    SQLV_SETTING_REBALANCE_LEASES = 7,  /* the rebalancer also balances leases */
    /* pg_hba.conf-like rules for SQL logins (security.h "host-based
    ** authentication rules"; "" = the built-in rule) */
    SQLV_SETTING_HBA_CONF = 8,
    /* seconds MVCC versions are kept once overwritten (version GC,
    ** docs/txn.md 6.1) */
    SQLV_SETTING_GC_TTL_SECONDS = 9,
    SQLV_SETTINGS_COUNT = 10,
} sqlv_setting_id;

typedef struct sqlv_setting_def {
    const char *name;          /* lower case, as stored and shown */
    sqlv_setting_type type;
    int64_t default_value;     /* in the type's unit */
    int64_t min, max;          /* inclusive */
    const char *description;
} sqlv_setting_def;

#define SQLV_SETTING_PREFIX "\0\0\0\0\0\0\0\0ssetting/"
#define SQLV_SETTING_PREFIX_LEN 17
#define SQLV_SETTING_NAME_MAX 64        /* bytes of a name, NUL included */
#define SQLV_SETTING_TEXT_MAX 64        /* bytes of a formatted value, NUL included */
#define SQLV_SETTINGS_SCAN_MAX 256      /* keys one sqlv_settings_read looks at */

/* The definition of id (static), NULL for an id out of range. */
const sqlv_setting_def *sqlv_setting_def_get(int id);
/* The id of a name (case-insensitive), or -1. */
int sqlv_setting_lookup(const char *name);
/* "bytes", "int", "duration", "bool" (static). */
const char *sqlv_setting_type_name(sqlv_setting_type type);

/* Text -> value of a type, then checked against id's [min, max]. 0 with
** *value, or -1 with a message for users in msg (SQLSTATE 22023). */
int sqlv_setting_parse_type(sqlv_setting_type type, const char *text, int64_t *value,
                            char *msg, size_t msg_size);
int sqlv_setting_parse(sqlv_setting_id id, const char *text, int64_t *value, char *msg,
                       size_t msg_size);
/* The canonical text of a value ("64 MiB", "2500", "10s", "true") into buf
** (SQLV_SETTING_TEXT_MAX is enough); it parses back to value. */
void sqlv_setting_format(sqlv_setting_type type, int64_t value, char *buf, size_t size);
/* A byte count for people, one decimal at most: "70 MiB", "1.5 KiB", "300
** B" (log lines and event reasons; not meant to round-trip). */
void sqlv_bytes_human(uint64_t bytes, char *buf, size_t size);

/* The key of id (appended to out). 0 or -1 (memory). */
int sqlv_setting_key(sqlv_setting_id id, base_buf *out);
/* Value codec. Encode appends (0 or -1); decode checks the version, the
** type and [min, max] of id: 0, or -1 for anything else. */
int sqlv_setting_value_encode(sqlv_setting_id id, int64_t value, base_buf *out);
int sqlv_setting_value_decode(sqlv_setting_id id, const uint8_t *p, size_t len, int64_t *value);

/* Every setting at once. */
typedef struct sqlv_settings {
    int64_t values[SQLV_SETTINGS_COUNT];
    bool stored[SQLV_SETTINGS_COUNT]; /* a key holds it (else the default) */
    char hba_conf[SEC_HBA_TEXT_BYTES_MAX + 1]; /* the text of SQLV_SETTING_HBA_CONF */
} sqlv_settings;
void sqlv_settings_defaults(sqlv_settings *out);
/* Read the stored settings through t (one scan of the prefix, at most
** SQLV_SETTINGS_SCAN_MAX keys); what does not decode keeps its default
** (logged). TXN_OK or t's error with err set. */
int sqlv_settings_read(txn *t, sqlv_settings *out, txn_error *err);
/* Store value for id through t; value NULL deletes the key (RESET). The
** value must have passed sqlv_setting_parse (TXN_ERR_INVALID otherwise). */
int sqlv_setting_write(txn *t, sqlv_setting_id id, const int64_t *value, txn_error *err);

/* Text settings (SQLV_SETTING_TEXT). Check text for id: 0, or -1 with a
** message for users (22023; a bad rule names its line). */
int sqlv_setting_check_text(sqlv_setting_id id, const char *text, char *msg, size_t msg_size);
/* Codec: encode appends (0 or -1); decode copies the text into out (size
** bytes, NUL-terminated) after the same check: 0, or -1. */
int sqlv_setting_text_encode(sqlv_setting_id id, const char *text, base_buf *out);
int sqlv_setting_text_decode(sqlv_setting_id id, const uint8_t *p, size_t len, char *out,
                             size_t size);
/* Store text for id through t (it must pass sqlv_setting_check_text:
** TXN_ERR_INVALID otherwise); NULL deletes the key. */
int sqlv_setting_write_text(txn *t, sqlv_setting_id id, const char *text, txn_error *err);
/* Read one text setting through t into out ("" when not set or when the
** stored value does not decode: logged). TXN_OK or t's error. */
int sqlv_setting_read_text(txn *t, sqlv_setting_id id, char *out, size_t size, txn_error *err);

#endif
