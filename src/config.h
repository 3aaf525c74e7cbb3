/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The INI configuration, parsed and validated into an immutable struct.
 * See conf/xlb.ini for every key, its default and its range.
 */
#ifndef XLB_CONFIG_H
#define XLB_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "xlb/tuple.h"

#define XLB_NAME_MAX 64
#define XLB_PATH_MAX 108         /* sun_path */
#define XLB_MAX_SERVICES 1024
#define XLB_MAX_BACKENDS 1024    /* per service */

enum xlb_xdp_mode { XLB_XDP_AUTO, XLB_XDP_NATIVE, XLB_XDP_GENERIC };
enum xlb_scheduler { XLB_SCHED_MAGLEV };
enum xlb_health_kind { XLB_HEALTH_NONE, XLB_HEALTH_TCP, XLB_HEALTH_HTTP, XLB_HEALTH_UDP };
enum xlb_backend_down_action { XLB_DOWN_RESET, XLB_DOWN_DROP, XLB_DOWN_KEEP };
enum xlb_no_backend_action { XLB_NOBACKEND_REJECT, XLB_NOBACKEND_DROP };

/* Conntrack timeouts, seconds, in the kernel's sysctl order. */
enum xlb_timeout {
	XLB_TO_TCP_SYN_SENT,
	XLB_TO_TCP_SYN_RECV,
	XLB_TO_TCP_ESTABLISHED,
	XLB_TO_TCP_FIN_WAIT,
	XLB_TO_TCP_CLOSE_WAIT,
	XLB_TO_TCP_LAST_ACK,
	XLB_TO_TCP_TIME_WAIT,
	XLB_TO_TCP_CLOSE,
	XLB_TO_TCP_MAX_RETRANS,
	XLB_TO_TCP_UNACK,
	XLB_TO_UDP,
	XLB_TO_UDP_STREAM,
	XLB_TO_ICMP,
	XLB_TO_GENERIC,
	XLB_TO_MAX,
};

#define XLB_MAX_PREFIXES 64

/* An address prefix: the address (IPv4 mapped) and its length in bits of
 * the family's own address (0-32 for IPv4, 0-128 for IPv6). */
struct xlb_prefix {
	union xlb_addr addr;
	uint8_t family;
	uint8_t len;
};

/* Whether a (IPv4 mapped) of family is inside p. */
static inline bool xlb_prefix_match(const struct xlb_prefix *p, const union xlb_addr *a,
				    uint8_t family)
{
	unsigned bits = p->family == AF_INET ? 96u + p->len : p->len;

	if (family != p->family)
		return false;
	for (unsigned i = 0; i < 16 && bits; i++) {
		unsigned n = bits >= 8 ? 8 : bits;
		uint8_t mask = (uint8_t)(0xff00 >> n);

		if ((a->b[i] ^ p->addr.b[i]) & mask)
			return false;
		bits -= n;
	}
	return true;
}

struct xlb_backend_conf {
	struct xlb_endpoint ep;      /* address, port (network order), family */
	uint32_t weight;             /* 0..65535; 0 = no new connections */
	bool has_mac;                /* static next-hop MAC given with mac= */
	uint8_t mac[6];
};

struct xlb_service_conf {
	char name[XLB_NAME_MAX];
	struct xlb_endpoint vip;     /* VIP address, port (network order), family */
	uint8_t proto;               /* IPPROTO_TCP or IPPROTO_UDP */
	enum xlb_scheduler scheduler;
	uint32_t maglev_table_size;  /* prime */
	struct xlb_backend_conf *backends;
	uint32_t n_backends;

	enum xlb_health_kind health;
	uint16_t health_port;        /* host order; 0 = each backend's own port */
	uint32_t health_interval_ms;
	uint32_t health_timeout_ms;
	uint32_t health_rise;
	uint32_t health_fall;
	char health_path[256];
	uint32_t health_status;
	char health_payload[256];
	uint32_t health_passive;     /* down after N RST/unreachable answers to new flows; 0 off */
	enum xlb_backend_down_action on_backend_down;
	uint32_t drain_timeout;      /* seconds */
	bool drain_fallback;         /* no backend up: new flows may go to draining ones */
	enum xlb_no_backend_action no_backend;
	bool notrack;                /* stateless: no conntrack entry, Maglev both ways */
	/* With notrack: only these clients bypass conntrack (none = all). */
	struct xlb_prefix *notrack_clients;
	uint32_t n_notrack_clients;
};

struct xlb_ct_conf {
	uint32_t max;
	uint32_t buckets;
	uint32_t timeout[XLB_TO_MAX];   /* seconds */
	bool tcp_loose;
	bool tcp_be_liberal;
	bool zone_from_vlan;         /* conntrack zone = the frame's VLAN id */
};

struct xlb_global_conf {
	char interface[IF_NAMESIZE];
	bool all_queues;
	uint32_t n_queues;              /* when !all_queues */
	uint16_t queues[64];            /* sorted, unique */
	enum xlb_xdp_mode xdp_mode;
	char control_socket[XLB_PATH_MAX];
	bool metrics_enabled;           /* metrics = ADDR:PORT given */
	struct xlb_endpoint metrics;    /* the Prometheus endpoint's address */
};

struct xlb_config {
	char *path;
	struct xlb_global_conf global;
	struct xlb_ct_conf ct;
	struct xlb_service_conf *services;
	uint32_t n_services;
};

/*
 * Load and validate FILE. On success returns 0 and *out owns a config to
 * release with xlb_config_free(). On failure returns a negative errno and
 * writes a message for people into err: "FILE: [section] key = value: what
 * is wrong (what would be accepted)".
 */
int xlb_config_load(const char *path, struct xlb_config **out, char *err, size_t errlen);
void xlb_config_free(struct xlb_config *cfg);

/* Defaults, for conf/xlb.ini's documentation and for tests. */
extern const uint32_t xlb_default_timeouts[XLB_TO_MAX];
const char *xlb_timeout_key(enum xlb_timeout t);   /* "tcp_timeout_syn_sent", ... */

#endif
