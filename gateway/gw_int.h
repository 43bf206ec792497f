/*
** gateway/ internals. No other folder includes this file.
**
** Three parts:
**   gw_proto.c  - pure: PostgreSQL v3 message encoding into a base_buf and
**                 decoding of the startup packet. No I/O, no threads.
**   gw_server.c - the libuv adapter: listener, connections, frame parsing,
**                 writes, shutdown. Runs on the loop thread only.
**   gw_worker.c - one worker thread per connection that authenticates its
**                 user (SCRAM-SHA-256 or client certificate), runs the
**                 session's SQL and hands the response bytes back to the loop.
**   gw_auth.c   - pure: the per-address limit of failed logins.
**
** Threading (docs/decisions/002-session-threads.md):
**   - Fields marked [loop] are touched only by the loop thread.
**   - Fields marked [mu] are guarded by gw_conn.mu.
**   - Fields marked [worker] are touched only by the worker thread (or by
**     the loop before the worker starts / after it is joined).
*/
#ifndef MERIDIAN_GW_INT_H
#define MERIDIAN_GW_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/base.h"
#include "gateway/gateway.h"

/* ---- limits -------------------------------------------------------------- */
#define GW_DEFAULT_MAX_CONNECTIONS 256
#define GW_DEFAULT_MAX_MESSAGE_BYTES (64u * 1024 * 1024)
/* Startup packet, TLS handshake and login together (slowloris before
** authentication; PostgreSQL's authentication_timeout is 60 s). */
#define GW_DEFAULT_STARTUP_TIMEOUT_MS 10000u
/* One incomplete message of an authenticated client (slowloris after it);
** 64 MiB in 30 s is 2.2 MB/s. */
#define GW_DEFAULT_MESSAGE_TIMEOUT_MS 30000u
/* Result bytes held for one client (see gw_options.max_result_bytes). */
#define GW_DEFAULT_MAX_RESULT_BYTES (64u * 1024 * 1024)
/* After a statement timeout fired, the cancel is repeated this often until
** the job ends (a cancel that raced with the start of the statement is
** not lost). */
#define GW_CANCEL_REPEAT_MS 100u
/* A Query's text (SQLite's limit in sql/, SQLV__SQL_BYTES_MAX): longer is
** 54000 "statement too long", the session goes on. */
#define GW_STATEMENT_MAX_BYTES (16u * 1024 * 1024)
/* PostgreSQL's own limit on the startup packet. */
#define GW_STARTUP_PACKET_MAX_BYTES 10000u
/* Accepted sockets beyond max_connections (startup in progress, cancel
** requests, clients about to be refused with 53300); past this they are
** closed at once without a reply. */
#define GW_EXTRA_SOCKETS 64
/* A worker waits while this many response bytes are queued or in flight
** for its connection (backpressure against a slow reader). */
#define GW_OUTPUT_LIMIT_BYTES (1024u * 1024)
/* The worker hands its bytes to the loop once it holds this many. */
#define GW_OUTPUT_FLUSH_BYTES (64u * 1024)
/* While a query runs, the loop stops reading once this much unprocessed
** input is buffered (pipelined messages wait in the kernel). */
#define GW_INPUT_PAUSE_BYTES (1024u * 1024)
/* An empty input buffer larger than this is released. */
#define GW_INPUT_KEEP_BYTES (256u * 1024)
/* Bytes reserved per read. */
#define GW_READ_CHUNK_BYTES (64u * 1024)
/* Extended-protocol messages handed to the worker as one job: at most
** this many messages / about this many bytes (a message past the byte
** limit waits for the next job). */
#define GW_EXT_BATCH_MESSAGES_MAX 1024
#define GW_EXT_BATCH_BYTES (1024u * 1024)
/* Startup packet: at most this many name/value pairs. */
#define GW_STARTUP_PARAMS_MAX 64

/* ---- protocol constants ---------------------------------------------------- */
#define GW_PROTOCOL_3_0 196608u         /* 3 << 16 */
#define GW_CANCEL_REQUEST_CODE 80877102u
#define GW_SSL_REQUEST_CODE 80877103u
#define GW_GSSENC_REQUEST_CODE 80877104u

/* ---- gw_proto.c: message encoding (pure) ------------------------------------
** Every gw_msg_* appends one complete message to b and returns 0, or -ENOMEM
** (b is then left as it was before the call). */
int gw_msg_auth_ok(base_buf *b);
/* AuthenticationSASL offering SCRAM-SHA-256 only (no -PLUS: no channel
** binding). */
int gw_msg_auth_sasl(base_buf *b);
/* AuthenticationSASLContinue (code GW_AUTH_SASL_CONTINUE) or
** AuthenticationSASLFinal (GW_AUTH_SASL_FINAL) carrying data. */
#define GW_AUTH_SASL_CONTINUE 11u
#define GW_AUTH_SASL_FINAL 12u
int gw_msg_auth_sasl_data(base_buf *b, uint32_t code, const void *data, size_t len);
int gw_msg_parameter_status(base_buf *b, const char *name, const char *value);
int gw_msg_backend_key_data(base_buf *b, uint32_t pid, uint32_t secret);
int gw_msg_ready_for_query(base_buf *b, char status);
int gw_msg_row_description(base_buf *b, int ncols, const sqlv_column *cols);
int gw_msg_data_row(base_buf *b, int ncols, const sqlv_cell *cells);
int gw_msg_command_complete(base_buf *b, const char *tag);
int gw_msg_empty_query(base_buf *b);
/* severity: "ERROR" or "FATAL"; sqlstate: 5 chars. */
int gw_msg_error(base_buf *b, const char *severity, const char *sqlstate,
                 const char *message);
int gw_msg_notice(base_buf *b, const char *message);
/* NegotiateProtocolVersion: newest minor we support, unrecognized options. */
int gw_msg_negotiate_version(base_buf *b, uint32_t minor, int noptions,
                             const char *const *options);

uint32_t gw_get_u32(const uint8_t *p);

/* ---- gw_proto.c: extended query protocol (pure) ------------------------------ */
/* A message with an empty body: '1' ParseComplete, '2' BindComplete,
** '3' CloseComplete, 'n' NoData, 's' PortalSuspended. */
int gw_msg_empty(base_buf *b, char type);
/* CopyInResponse 'G': overall text format, ncols text columns. */
int gw_msg_copy_in_response(base_buf *b, int ncols);
/* COPY TO STDOUT: CopyOutResponse (text), one CopyData; CopyDone is gw_msg_empty 'c'. */
int gw_msg_copy_out_response(base_buf *b, int ncols);
int gw_msg_copy_data(base_buf *b, const void *data, size_t len);
int gw_msg_parameter_description(base_buf *b, int nparams, const uint32_t *oids);

#define GW_EXT_PARAMS_MAX SQLV_PARAMS_MAX
#define GW_EXT_NAME_BYTES_MAX SQLV_NAME_BYTES_MAX

/* A decoded Parse/Bind/Describe/Close/Execute/Sync/Flush. Strings and
** values point into the message body (valid while it is); the arrays are
** owned by the struct (gw_ext_msg_free). */
typedef struct gw_ext_msg {
    char type;
    char kind;              /* Describe/Close: 'S' or 'P' */
    const char *stmt;       /* Parse, Bind, Describe/Close 'S' */
    const char *portal;     /* Bind, Execute, Describe/Close 'P' */
    const char *query;      /* Parse */
    size_t query_len;
    int nparam_oids;
    uint32_t *param_oids;
    int nformats;
    int16_t *formats;
    int nvalues;
    sqlv_cell *values;      /* data NULL: SQL NULL */
    int nresult_formats;
    int16_t *result_formats;
    uint32_t max_rows;      /* Execute: 0 all */
} gw_ext_msg;

/* Decode body (len bytes) of a message of type. 0, or -1 with *why a static
** message (08P01, or out of memory). out needs gw_ext_msg_free on success. */
int gw_decode_ext(char type, const uint8_t *body, uint32_t len, gw_ext_msg *out,
                  const char **why);
void gw_ext_msg_free(gw_ext_msg *m);

/* SASLInitialResponse ('p' body): the mechanism name (points into body) and
** the client's first message (data, data_len; pointers into body). 0, or -1
** with *why a static message for the client (08P01). */
int gw_parse_sasl_initial(const uint8_t *body, uint32_t len, const char **mechanism,
                          const uint8_t **data, size_t *data_len, const char **why);

/* ---- gw_auth.c: failed logins per source address (pure) ----------------------
** A token bucket per address in GCRA form: full_at_ms is when the address
** would have its GW_AUTH_FAILURES_BURST attempts back; each failure pushes
** it GW_AUTH_REFILL_MS further (from now at least). An address is refused
** while full_at_ms - now > (burst - 1) * refill. A fixed table: memory is
** bounded whatever the number of addresses. Not thread-safe (the server
** holds auth_mu). */
#define GW_AUTH_ADDR_SIZE 64 /* an IPv6 literal with room */
typedef struct gw_auth_source {
    char addr[GW_AUTH_ADDR_SIZE]; /* "" : free */
    int64_t full_at_ms;
} gw_auth_source;
typedef struct gw_auth_limiter {
    gw_auth_source *sources; /* GW_AUTH_SOURCES_MAX; owner: the limiter */
} gw_auth_limiter;
/* 0 or GW_ERR_NOMEM. */
int gw_auth_limiter_init(gw_auth_limiter *l);
void gw_auth_limiter_free(gw_auth_limiter *l);
bool gw_auth_limited(const gw_auth_limiter *l, const char *addr, int64_t now_ms);
void gw_auth_failed(gw_auth_limiter *l, const char *addr, int64_t now_ms);

/* ---- gw_auth.c: sessions per user (pure) --------------------------------------
** A count per user name of the logged-in sessions; entries go when their
** count reaches 0, so the table holds at most max_connections names. Not
** thread-safe (the server holds auth_mu). */
typedef struct gw_user_count {
    char *user; /* owner: the table */
    int n;
} gw_user_count;
typedef struct gw_user_counts {
    gw_user_count *v; /* owner: the table */
    int len, cap;
} gw_user_counts;
/* One more session of user unless it has limit already (limit 0: none).
** 0, GW_ERR_LIMIT or GW_ERR_NOMEM. */
int gw_user_acquire(gw_user_counts *t, const char *user, int limit);
void gw_user_release(gw_user_counts *t, const char *user);
int gw_user_sessions(const gw_user_counts *t, const char *user);
void gw_user_counts_free(gw_user_counts *t);

/* ---- gw_proto.c: startup packet decoding (pure) ---------------------------- */
typedef struct gw_startup {
    uint32_t code; /* protocol version or a request code */
    /* Cancel request only. */
    uint32_t cancel_pid, cancel_secret;
    /* Protocol 3.x only; pointers into the packet (valid while it is). */
    const char *user, *database, *application_name;
    const char *options;                          /* "" when not sent */
    int nunknown_options;                         /* "_pq_." options */
    const char *unknown_options[GW_STARTUP_PARAMS_MAX];
} gw_startup;

enum {
    GW_STARTUP_OK = 0,
    GW_STARTUP_BAD = -1,      /* malformed: 08P01 */
    GW_STARTUP_VERSION = -2,  /* unsupported protocol: 0A000 */
};

/* The startup packet's `options` as PostgreSQL reads them (pg_split_opts,
** then the switches a client may send): words split on whitespace, a
** backslash takes the next character literally; "-c name=value",
** "-cname=value" and "--name=value" each call fn(arg, name, value, state,
** msg, size) with '-' in the name read as '_'. Returns 0; -1 with
** state/msg set (42601: another switch or one without a value; 53200: out
** of memory); or fn's nonzero, which has set them. */
typedef int (*gw_option_fn)(void *arg, const char *name, const char *value, char state[6],
                            char *msg, size_t size);
int gw_startup_options(const char *options, gw_option_fn fn, void *arg, char state[6],
                       char *msg, size_t size);

/* Decode a complete startup packet (the 4 length bytes included). On error
** *why is a static message for the client. */
int gw_parse_startup(const uint8_t *pkt, uint32_t len, gw_startup *out,
                     const char **why);

/* ---- connections ------------------------------------------------------------ */
typedef enum gw_conn_state {
    GW_CONN_STARTUP = 0,  /* waiting for the startup packet */
    GW_CONN_AUTH,         /* waiting for a SASL message ('p') of the login */
    GW_CONN_READY,        /* between queries: the loop parses messages */
    GW_CONN_BUSY,         /* the worker has a job; input waits */
    GW_CONN_DISCARD,      /* extended-protocol error: skip until Sync */
    GW_CONN_COPY,         /* COPY FROM STDIN: copy messages go to the worker */
    GW_CONN_COPY_DISCARD, /* the copy failed (error sent): skip CopyData
                          ** until CopyDone/CopyFail, then ReadyForQuery */
    GW_CONN_CLOSING,      /* closing: no more input processed */
} gw_conn_state;

typedef enum gw_job_kind {
    GW_JOB_NONE = 0,
    GW_JOB_OPEN,   /* authenticate (or start to), open the session, send
                   ** the startup responses */
    GW_JOB_AUTH,   /* a SASL message of the login (job_query: its body) */
    GW_JOB_QUERY,  /* run a simple query, then ReadyForQuery */
    GW_JOB_EXT,    /* extended-protocol messages up to a Sync (job_query
                   ** holds frames: type, u32 body length, body); each Sync
                   ** ends with ReadyForQuery. During COPY: copy messages
                   ** (CopyData, Flush, Sync, up to a CopyDone/CopyFail)
                   ** or one unexpected message, in the same frames. */
} gw_job_kind;

typedef struct gw_conn gw_conn;
typedef struct gw_server_int gw_server_int;

/* A socket handed over by gw_adopt_connection, waiting for the loop. */
typedef struct gw_adopt {
    struct gw_adopt *next;
    int fd;             /* owner: this record until the loop takes it */
    size_t prefix_len;
    uint8_t prefix[];   /* the bytes the hander-over already read */
} gw_adopt;

struct gw_conn {
    uv_tcp_t tcp;            /* [loop]; tcp.data = this */
    /* Until the login is done: the startup timeout. After it: a message
    ** left incomplete longer than message_timeout_ms. [loop] */
    uv_timer_t input_timer;
    bool input_timer_armed;  /* [loop] input_timer runs for an incomplete message */
    /* statement_timeout while a Query/extended job runs (BUSY);
    ** idle_in_transaction_session_timeout while idle in a block,
    ** idle_session_timeout while idle outside one. [loop] */
    uv_timer_t stmt_timer;
    int handles_open;        /* [loop] tcp + timers not yet closed */
    bool timer_closing;      /* [loop] both timers closed */
    gw_server *server;       /* [loop] borrowed */
    gw_conn *prev, *next;    /* [loop] server's list */
    uint32_t pid, secret;    /* cancel key; pid unique per server */
    gw_conn_state state;     /* [loop] */
    base_buf in;             /* [loop] received bytes */
    size_t in_pos;           /* [loop] first unprocessed byte of in */
    bool reading;            /* [loop] uv_read_start active */
    bool handle_closing;     /* [loop] uv_close issued */
    bool shutting_down;      /* [loop] uv_shutdown issued (close follows) */
    bool counted;            /* [loop] counts against max_connections */
    bool has_worker;         /* [loop] thread created, not yet joined */
    bool ssl_answered;       /* [loop] one SSL/GSS 'N' already sent */
    /* TLS (gw_server.tls set and the client sent SSLRequest): every socket
    ** byte passes through tls; `in` then holds plaintext and `raw` the
    ** ciphertext just read. owner: this conn, sec_tls_conn_free. [loop] */
    sec_tls_conn *tls;
    base_buf raw;            /* [loop] ciphertext read, fed at once */
    bool tls_logged;         /* [loop] handshake outcome logged */
    uv_shutdown_t shutdown_req; /* [loop] */
    uv_thread_t thread;      /* [loop] */
    /* Startup parameters, owner: this conn. [loop before worker start] */
    char *user, *database, *application_name;
    char *options; /* the startup packet's options ("-c name=value ...") */
    /* The CN of the client certificate the TLS handshake verified, or NULL;
    ** owner: this conn. [loop before worker start] */
    char *cert_user;
    char peer_addr[GW_AUTH_ADDR_SIZE]; /* the client's IP ("" unknown) [loop before worker start] */
    bool over_tls;           /* the client uses TLS (host-based rules) [loop before worker start] */
    bool authenticated;      /* [loop] the login finished: the startup timer is closed */

    uv_mutex_t mu;
    uv_cond_t cond;          /* worker waits for a job / output room */
    gw_job_kind job;         /* [mu] pending job */
    char *job_query;         /* [mu] owner: conn; moved to worker */
    size_t job_query_len;    /* [mu] */
    bool ext_failed;         /* [mu] the last extended message failed: the
                             ** loop discards until Sync */
    char copy_state;         /* [mu] after the last job: 0 none, 'A' in
                             ** copy-in, 'D' copy failed (simple query),
                             ** discard until CopyDone/CopyFail */
    char copy_mode;          /* [worker] as copy_state, while a job runs */
    bool copy_ext;           /* [worker] the copy came from Execute: no
                             ** ReadyForQuery at its end, errors discard
                             ** until Sync */
    bool job_running;        /* [mu] worker is inside a job */
    bool job_done;           /* [mu] worker finished a job; loop resumes */
    bool closing;            /* [mu] connection going away: worker exits */
    bool fatal;              /* [mu] worker wants the connection closed */
    bool worker_exited;      /* [mu] worker returned; join it */
    bool auth_wait;          /* [mu] after the last job: the login waits for a
                             ** SASL message (the loop's next state is AUTH) */
    base_buf out;            /* [mu] bytes for the loop to write */
    size_t inflight_bytes;   /* [mu] bytes handed to uv_write, not done */
    char txn_status;         /* [mu] 'I','T','E' after the last job */
    /* The session's statement_timeout and idle_in_transaction_session_timeout
    ** after the last job (0: none). [mu] */
    uint32_t statement_timeout_ms, idle_timeout_ms;
    uint32_t idle_session_timeout_ms; /* [mu] idle_session_timeout (0: none) */
    bool stmt_timed_out;     /* [mu] the statement timer fired for this job:
                             ** 57014 says "statement timeout" */
    bool user_counted;       /* [mu] holds a slot in server->user_counts */
    sqlv_session *live_session; /* [mu] for cancel; NULL when none */

    sqlv_session *session;   /* [worker] owner: worker, sqlv_session_close */
    base_buf wbuf;           /* [worker] serialized, not yet flushed */
    /* The login in progress. owner: the worker, wiped and freed when the
    ** login ends or the thread exits. [worker] */
    sqlv_auth_info *auth;
    sec_scram_server *scram;
    int auth_step;           /* [worker] SASL messages received */
    bool auth_waiting;       /* [worker] this job asked for a SASL message */
    bool sink_failed;        /* [worker] out of memory or client gone */
    /* [worker] a DataRow over max_result_bytes: the statement is cancelled,
    ** its rows dropped and its 57014 (or CommandComplete) becomes 53200 */
    size_t result_too_big;
};

/* The server. Everything but `wake`'s sending side is loop-owned after
** gw_start returns. */
struct gw_server {
    sqlv_engine *engine;       /* borrowed */
    sec_tls_ctx *tls;          /* borrowed; NULL: insecure */
    int max_connections;
    uint32_t max_message_bytes;
    uint32_t startup_timeout_ms;
    uint32_t message_timeout_ms;
    uint32_t max_result_bytes;
    int max_connections_per_user; /* 0: no limit */
    bool auth_required;        /* GW_AUTH_REQUIRED in effect */
    uint8_t auth_secret[32];   /* per-process random: mock verifiers of unknown users */
    uv_mutex_t auth_mu;        /* guards limiter (loop and workers) */
    gw_auth_limiter limiter;   /* [auth_mu] */
    gw_user_counts user_counts; /* [auth_mu] logged-in sessions per user */
    uv_loop_t loop;
    uv_tcp_t listener;
    bool has_listener;         /* false: port GW_PORT_NONE */
    uv_async_t adopt;          /* gw_adopt_connection: "sockets to take" */
    uv_mutex_t adopt_mu;       /* guards the adopt_* fields below */
    gw_adopt *adopt_head, *adopt_tail; /* [adopt_mu] owner: these lists */
    int adopt_pending;         /* [adopt_mu] <= GW_ADOPT_PENDING_MAX */
    bool adopt_closed;         /* [adopt_mu] stopping: refuse, adopt closed */
    uv_async_t wake;           /* workers: "look at your connections" */
    uv_async_t stop;           /* gw_stop: "shut down" */
    /* A socket we cannot afford a gw_conn for is accepted into this and
    ** closed at once: libuv stops watching the listener until the pending
    ** socket is accepted. */
    uv_tcp_t reject;           /* [loop] */
    bool reject_busy;          /* [loop] reject is open or closing */
    uv_thread_t thread;
    int port;
    bool stopping;             /* [loop] */
    gw_conn *conns;            /* [loop] list of all sockets */
    int nconns;                /* [loop] */
    int nsessions;             /* [loop] conns that count */
    uint32_t next_pid;         /* [loop] */
};

/* gw_worker.c */
/* Start the worker of c with the OPEN job. Loop thread. 0 or GW_ERR_NOMEM. */
int gw_worker_start(gw_conn *c);
/* The worker's thread entry. */
void gw_worker_main(void *arg);

#endif
