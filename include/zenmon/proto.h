/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * zenmon wire protocol, version 1: constants, the host-order form of every
 * record, and the codec that the agent, libzenmon and zenmonctl share.
 * docs/PROTOCOL.md is the contract; this header must say the same thing.
 *
 * A connection carries frames. Every integer is little-endian.
 *
 *   frame   := u32 length   (whole frame, header included, 8..ZM_FRAME_MAX)
 *              u16 magic    (ZM_FRAME_MAGIC)
 *              u16 count    (number of records that follow)
 *              record * count
 *   record  := u16 type     (enum zm_rec_type)
 *              u16 length   (whole record, header included, >= 4)
 *              body         (length - 4 bytes)
 *
 * A body may be longer than the fixed part documented for its type; a
 * receiver ignores bytes past the fixed part unless the type gives them a
 * meaning (a trailing string). Records are not aligned.
 */
#ifndef ZENMON_PROTO_H
#define ZENMON_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define ZM_PROTO_VERSION 1
#define ZM_FRAME_MAGIC 0x6d7aU          /* bytes 'z' 'm' on the wire */
#define ZM_FRAME_HDR_LEN 8U
#define ZM_REC_HDR_LEN 4U
#define ZM_FRAME_MAX (1U << 20)         /* 1 MiB, header included */
#define ZM_REC_MAX 0xffffU              /* a record's u16 length */
#define ZM_NAME_MAX 64U                 /* HELLO client name, bytes */
#define ZM_MSG_MAX 512U                 /* ERROR message, bytes */
#define ZM_DEFAULT_SOCKET "/run/zenmon/zenmon.sock"
#define ZM_SOCKET_ENV "ZENMON_SOCKET"

enum zm_rec_type {
	/* client -> agent */
	ZM_REC_HELLO = 0x01,
	ZM_REC_MONITOR_PROC = 0x10,
	ZM_REC_MONITOR_PIDFD = 0x11,
	ZM_REC_DEMONITOR = 0x12,
	ZM_REC_SYNC = 0x13,
	ZM_REC_STATUS = 0x14,
	ZM_REC_MONITOR_TCP = 0x15,
	ZM_REC_STATS = 0x16,
	ZM_REC_TARGETS = 0x17,
	/* agent -> client */
	ZM_REC_WELCOME = 0x02,
	ZM_REC_DOWN = 0x20,
	ZM_REC_ERROR = 0x21,
	ZM_REC_SYNCED = 0x22,
	ZM_REC_STATUS_REPLY = 0x23,
	ZM_REC_STATS_REPLY = 0x24,
	ZM_REC_TARGETS_REPLY = 0x25,
	ZM_REC_MONITORED = 0x26,   /* only to a client whose HELLO set ZM_HELLO_RESUMABLE */
};

/* Fixed body sizes (bytes after the 4-byte record header). */
#define ZM_HELLO_LEN 24U
#define ZM_WELCOME_LEN 32U
#define ZM_MONITOR_PROC_LEN 24U
#define ZM_MONITOR_PIDFD_LEN 16U
#define ZM_DEMONITOR_LEN 16U
#define ZM_SYNC_LEN 8U
#define ZM_STATUS_LEN 8U
#define ZM_DOWN_LEN 40U
#define ZM_MONITOR_TCP_LEN 64U
#define ZM_DOWN_TCP_TAIL_LEN 40U   /* after the 40-byte DOWN, for kind TCP */
#define ZM_ERROR_LEN 16U
#define ZM_SYNCED_LEN 8U
#define ZM_STATUS_REPLY_LEN 8U
#define ZM_STATS_LEN 8U
#define ZM_TARGETS_LEN 16U
#define ZM_TEXT_REPLY_LEN 16U      /* STATS_REPLY, TARGETS_REPLY: before the text */
#define ZM_MONITORED_LEN 24U

/*
 * HELLO flag: the client brings its monitors back after the agent restarts
 * (by identity, with ZM_MON_RESUME), so it wants a MONITORED record for each
 * monitor it named without identity. WELCOME's flags echo it when honoured.
 */
#define ZM_HELLO_RESUMABLE 0x1U

/* HELLO: the first record a client sends. name: trailing bytes, <= ZM_NAME_MAX. */
struct zm_hello {
	uint32_t version;          /* ZM_PROTO_VERSION */
	uint32_t flags;            /* ZM_HELLO_RESUMABLE */
	uint32_t max_rate;         /* DOWNs per second; 0 = agent default */
	uint32_t max_batch;        /* DOWN records per frame; 0 = agent default */
	uint32_t batch_window_us;  /* 0 = agent default */
	uint32_t reserved;
	char name[ZM_NAME_MAX + 1];/* NUL-terminated on decode */
};

/* WELCOME: the agent's answer to HELLO. version string: trailing bytes. */
struct zm_welcome {
	uint32_t version;
	uint32_t flags;
	uint32_t max_frame;        /* largest frame the agent accepts */
	uint32_t max_rate;         /* effective limits for this subscriber */
	uint32_t max_batch;
	uint32_t batch_window_us;
	uint64_t subscriber_id;
	char agent_version[ZM_NAME_MAX + 1];
};

#define ZM_MON_START_TIME 0x1U     /* MONITOR_PROC: start_ticks is set */
/*
 * MONITOR_PROC (with START_TIME) and MONITOR_TCP (BY_COOKIE): a monitor
 * brought back from an agent that went away. A death this agent inherited a
 * record of (the kernel saw it while no agent ran) is its DOWN.
 */
#define ZM_MON_RESUME 0x2U

struct zm_monitor_proc {
	uint64_t ref;              /* client-chosen, nonzero, unique among the
				      connection's active monitors */
	uint32_t pid;
	uint32_t flags;            /* ZM_MON_START_TIME, ZM_MON_RESUME */
	uint64_t start_ticks;      /* /proc/PID/stat field 22 */
};

#define ZM_MONITORED_GONE 0x1U     /* the target did not exist: its DOWN is noproc/noconnection */

/*
 * MONITORED: which target a monitor named without identity (MONITOR_PROC
 * without START_TIME, MONITOR_PIDFD, MONITOR_TCP by fd or tuple) resolved
 * to, sent in order with the other answers, before any DOWN of it.
 */
struct zm_monitored {
	uint64_t ref;
	uint16_t kind;             /* enum zm_target_kind */
	uint16_t flags;            /* ZM_MONITORED_GONE */
	uint32_t pid;              /* kind process; 0 for TCP (and for a reaped pidfd) */
	uint64_t start_ticks;      /* kind process: start time; kind TCP: the socket cookie */
};

/* MONITOR_PIDFD: the pidfd travels as SCM_RIGHTS; see docs/PROTOCOL.md. */
struct zm_monitor_pidfd {
	uint64_t ref;
	uint32_t flags;            /* none defined: send 0 */
	uint32_t reserved;
};

#define ZM_DEMON_FLUSH 0x1U

struct zm_demonitor {
	uint64_t ref;
	uint32_t flags;            /* ZM_DEMON_FLUSH (advisory to the agent) */
	uint32_t reserved;
};

enum zm_target_kind {
	ZM_TARGET_PROCESS = 1,
	ZM_TARGET_TCP = 2,
};

enum zm_reason {
	ZM_REASON_EXITED = 1,      /* value: exit status 0..255 */
	ZM_REASON_KILLED = 2,      /* value: signal; ZM_DOWN_CORE_DUMPED */
	ZM_REASON_NOPROC = 3,      /* no such process when monitored */
	ZM_REASON_TCP_CLOSED = 4,  /* tcp_how says how; value: errno or 0 */
	ZM_REASON_NOCONNECTION = 5,/* no such established connection when monitored */
};

/* How a monitored TCP connection closed (DOWN tail, reason TCP_CLOSED). */
enum zm_tcp_close_how {
	ZM_TCP_FIN = 1,            /* orderly close (FIN handshake), either side first */
	ZM_TCP_RESET_RX = 2,       /* the peer reset it */
	ZM_TCP_RESET_TX = 3,       /* this host reset it (abort, linger 0, unread data) */
	ZM_TCP_TIMEOUT = 4,        /* retransmissions or keepalives gave up; value = errno */
	ZM_TCP_ERROR = 5,          /* another socket error; value = errno */
};

/* MONITOR_TCP: which connection. */
enum zm_tcp_by {
	ZM_TCP_BY_FD = 1,          /* the socket travels as SCM_RIGHTS, as for MONITOR_PIDFD */
	ZM_TCP_BY_COOKIE = 2,      /* the kernel's socket cookie (SO_COOKIE, ss -e) */
	ZM_TCP_BY_TUPLE = 3,       /* local and remote address and port, in the agent's netns */
};

/* Endpoints of a TCP connection; addresses in network order (IPv4 in the
 * first 4 bytes), ports in host order. */
struct zm_tcp_tuple {
	uint8_t family;            /* AF_INET (2) or AF_INET6 (10) */
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
};

struct zm_monitor_tcp {
	uint64_t ref;
	uint8_t by;                /* enum zm_tcp_by */
	uint32_t flags;            /* ZM_MON_RESUME (BY_COOKIE only) */
	uint64_t cookie;           /* BY_COOKIE */
	struct zm_tcp_tuple tuple; /* BY_TUPLE: saddr:sport is the local end */
};

#define ZM_DOWN_CORE_DUMPED 0x1U

struct zm_down {
	uint64_t ref;
	uint64_t time_ns;          /* CLOCK_REALTIME of the death (or of the
				      noproc verdict) in nanoseconds */
	uint16_t kind;             /* enum zm_target_kind */
	uint16_t reason;           /* enum zm_reason */
	uint32_t flags;            /* ZM_DOWN_CORE_DUMPED */
	int32_t value;             /* exit status or signal number */
	uint32_t pid;
	uint64_t start_ticks;      /* kind TCP: the socket cookie */
	/* Kind TCP only, in the record's 40-byte tail: */
	uint8_t tcp_how;           /* enum zm_tcp_close_how; 0 for noconnection */
	uint8_t tcp_old_state;     /* the TCP state it left (Linux numbering) */
	struct zm_tcp_tuple tuple; /* family 0 when unknown */
};

/* ERROR: code is a positive Linux errno; message: trailing bytes. */
struct zm_error {
	uint64_t ref;              /* 0 when the error is not about one request */
	int32_t code;
	uint16_t request;          /* the record type that failed, 0 if none */
	uint16_t reserved;
	char message[ZM_MSG_MAX + 1];
};

/* SYNC / SYNCED, STATUS, STATS: a token echoed back. STATUS_REPLY: token + text. */

/* TARGETS: list the watched targets, the agent's view beside the kernel's. */
struct zm_targets {
	uint64_t token;
	uint32_t limit;            /* at most this many target lines; 0 = all */
	uint32_t flags;            /* none defined: send 0 */
};

#define ZM_TEXT_MORE 0x1U          /* another reply record with this token follows */

/*
 * STATS_REPLY, TARGETS_REPLY: one answer as one or more records, each
 * holding whole lines of text; the records of one token arrive in order, all
 * but the last with ZM_TEXT_MORE. text points into the record decoded.
 */
struct zm_text_reply {
	uint64_t token;
	uint32_t flags;            /* ZM_TEXT_MORE */
	uint32_t reserved;
	const uint8_t *text;
	size_t text_len;
};

/* ---- codec -------------------------------------------------------------- */

/* A growable byte buffer: bytes [off, len) are pending. */
struct zm_buf {
	uint8_t *data;
	size_t off, len, cap;
};

/* Make room for n more bytes. 0 or -ENOMEM. */
int zm_buf_reserve(struct zm_buf *b, size_t n);
/* Append n bytes. 0 or -ENOMEM. */
int zm_buf_append(struct zm_buf *b, const void *p, size_t n);
/* Drop n pending bytes from the front (n <= pending). */
void zm_buf_consume(struct zm_buf *b, size_t n);
static inline size_t zm_buf_pending(const struct zm_buf *b) { return b->len - b->off; }
/* NULL for a buffer that never had storage (NULL + 0 is undefined in C). */
static inline uint8_t *zm_buf_head(const struct zm_buf *b) { return b->data ? b->data + b->off : NULL; }
/* Free the storage; the struct is left empty and reusable. NULL-safe. */
void zm_buf_free(struct zm_buf *b);

/*
 * Frame writer. Records are appended to an open frame in a buffer; the frame
 * is closed (length and count patched) by zm_frame_end(). zm_frame_add()
 * closes the open frame and opens another when the record would not fit in
 * ZM_FRAME_MAX, so callers never build an oversized frame.
 * Call zm_frame_end() before sending or consuming from the buffer: an open
 * frame's header is not written yet, and zm_buf_consume() may move bytes.
 */
struct zm_frame_writer {
	struct zm_buf *buf;
	size_t start;              /* offset of the open frame's header */
	uint16_t count;
	int open;
};

void zm_frame_writer_init(struct zm_frame_writer *w, struct zm_buf *buf);
/* Append one record (type, body of len bytes). 0, -ENOMEM, or -EMSGSIZE
 * when one record cannot fit a frame. */
int zm_frame_add(struct zm_frame_writer *w, uint16_t type, const void *body, size_t len);
/* Close the open frame, if any. */
void zm_frame_end(struct zm_frame_writer *w);
/* Bytes in the open frame (0 if none). */
size_t zm_frame_open_len(const struct zm_frame_writer *w);

/* Encoders: write the body of one record into out (at least the fixed
 * length plus any trailing string) and return its length in bytes. */
size_t zm_enc_hello(uint8_t *out, const struct zm_hello *m);
size_t zm_enc_welcome(uint8_t *out, const struct zm_welcome *m);
size_t zm_enc_monitor_proc(uint8_t *out, const struct zm_monitor_proc *m);
size_t zm_enc_monitor_pidfd(uint8_t *out, const struct zm_monitor_pidfd *m);
size_t zm_enc_demonitor(uint8_t *out, const struct zm_demonitor *m);
size_t zm_enc_monitored(uint8_t *out, const struct zm_monitored *m);
/* A DOWN of kind TCP is ZM_DOWN_LEN + ZM_DOWN_TCP_TAIL_LEN bytes. */
size_t zm_enc_down(uint8_t *out, const struct zm_down *m);
size_t zm_enc_monitor_tcp(uint8_t *out, const struct zm_monitor_tcp *m);
size_t zm_enc_error(uint8_t *out, const struct zm_error *m);
size_t zm_enc_u64(uint8_t *out, uint64_t token);   /* SYNC, SYNCED, STATUS, STATS */
size_t zm_enc_targets(uint8_t *out, const struct zm_targets *m);
/* The text reply's fixed part; m->text (m->text_len bytes) follows it. */
size_t zm_enc_text_reply(uint8_t *out, const struct zm_text_reply *m);

/*
 * Queue text as text-reply records of type (ZM_REC_STATS_REPLY,
 * ZM_REC_TARGETS_REPLY) carrying token: as few records as hold it, each
 * cut after a newline (a line longer than a record is cut where the record
 * is full), all but the last flagged ZM_TEXT_MORE. Empty text is one
 * record. The number of records queued (>= 1), or -ENOMEM (records queued
 * before the failure stay queued).
 */
int zm_frame_add_text_reply(struct zm_frame_writer *w, uint16_t type, uint64_t token,
			    const char *text, size_t len);

/* A frame found at the head of a byte stream. */
struct zm_frame {
	const uint8_t *records;    /* first record */
	size_t records_len;        /* bytes of records */
	uint32_t len;              /* whole frame */
	uint16_t count;
};

/*
 * Look for one whole frame at p[0..n). Returns 1 and fills *ret when there is
 * one, 0 when more bytes are needed, -EBADMSG on a bad magic or a length below
 * the header, -EMSGSIZE on a length above max_frame. Reads no byte past n.
 */
int zm_frame_parse(const uint8_t *p, size_t n, uint32_t max_frame, struct zm_frame *ret);

struct zm_record {
	const uint8_t *body;
	uint16_t type;
	uint16_t len;              /* body length */
};

struct zm_record_iter {
	const uint8_t *p;
	size_t left;
	uint16_t count, seen;
};

void zm_record_iter_init(struct zm_record_iter *it, const struct zm_frame *f);
/*
 * Next record: 1 and *ret, 0 at the end, -EBADMSG when a record header is
 * truncated, a record length is below 4 or runs past the frame, or the
 * records do not fill the frame exactly as many as its count says.
 */
int zm_record_next(struct zm_record_iter *it, struct zm_record *ret);

/* Decoders: 0, or -EBADMSG when the body is shorter than the fixed part. */
int zm_dec_hello(const struct zm_record *r, struct zm_hello *ret);
int zm_dec_welcome(const struct zm_record *r, struct zm_welcome *ret);
int zm_dec_monitor_proc(const struct zm_record *r, struct zm_monitor_proc *ret);
int zm_dec_monitor_pidfd(const struct zm_record *r, struct zm_monitor_pidfd *ret);
int zm_dec_demonitor(const struct zm_record *r, struct zm_demonitor *ret);
int zm_dec_monitored(const struct zm_record *r, struct zm_monitored *ret);
int zm_dec_down(const struct zm_record *r, struct zm_down *ret);
int zm_dec_monitor_tcp(const struct zm_record *r, struct zm_monitor_tcp *ret);
int zm_dec_error(const struct zm_record *r, struct zm_error *ret);
int zm_dec_u64(const struct zm_record *r, uint64_t *ret);
int zm_dec_targets(const struct zm_record *r, struct zm_targets *ret);
int zm_dec_text_reply(const struct zm_record *r, struct zm_text_reply *ret);

/* Name of a record type for messages ("MONITOR_PROC"), "unknown" if none. */
const char *zm_rec_type_name(uint16_t type);
/* Name of a reason ("exited", "killed", "noproc"), "unknown" if none. */
const char *zm_reason_name(uint16_t reason);

#endif /* ZENMON_PROTO_H */
