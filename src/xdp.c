// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "log.h"
#include "xdp.h"
#include "xlb.skel.h"

struct xlb_xdp {
	struct xlb_bpf *skel;
	int ifindex;
	int link_fd;
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = '\0';
	xlb_log(level == LIBBPF_WARN ? XLB_LOG_WARN : XLB_LOG_DEBUG, "libbpf: %s", line);
	return 0;
}

struct xlb_xdp *xlb_xdp_load(int ifindex)
{
	struct xlb_xdp *x;
	int err;

	libbpf_set_print(libbpf_print);
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->ifindex = ifindex;
	x->link_fd = -1;
	x->skel = xlb_bpf__open();
	if (!x->skel) {
		err = -errno;
		xlb_err("cannot open the XDP program: %s", strerror(errno));
		goto err;
	}
	err = xlb_bpf__load(x->skel);
	if (err) {
		xlb_err("cannot load the XDP program: %s", strerror(-err));
		goto err;
	}
	return x;
err:
	if (x->skel)
		xlb_bpf__destroy(x->skel);
	free(x);
	errno = -err;
	return NULL;
}

static int attach_mode(struct xlb_xdp *x, __u32 flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	int fd;

	fd = bpf_link_create(bpf_program__fd(x->skel->progs.xlb_xdp), x->ifindex, BPF_XDP, &opts);
	if (fd < 0)
		return -errno;
	x->link_fd = fd;
	return 0;
}

int xlb_xdp_attach(struct xlb_xdp *x, enum xlb_xdp_mode mode, enum xlb_xdp_mode *used)
{
	int err;

	if (mode != XLB_XDP_GENERIC) {
		err = attach_mode(x, XDP_FLAGS_DRV_MODE);
		if (!err) {
			*used = XLB_XDP_NATIVE;
			return 0;
		}
		if (mode == XLB_XDP_NATIVE) {
			xlb_err("cannot attach XDP in native mode: %s", strerror(-err));
			return err;
		}
		xlb_warn("native XDP not available (%s), falling back to generic", strerror(-err));
	}
	err = attach_mode(x, XDP_FLAGS_SKB_MODE);
	if (err) {
		xlb_err("cannot attach XDP in generic mode: %s", strerror(-err));
		return err;
	}
	*used = XLB_XDP_GENERIC;
	return 0;
}

void xlb_xdp_close(struct xlb_xdp *x)
{
	if (!x)
		return;
	if (x->link_fd >= 0)
		close(x->link_fd);
	xlb_bpf__destroy(x->skel);
	free(x);
}

int xlb_xdp_xsks_fd(const struct xlb_xdp *x)
{
	return bpf_map__fd(x->skel->maps.xsks);
}

static void svc_key(struct xlb_svc_key *k, const struct xlb_endpoint *ep, uint8_t proto)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, ep->addr.b, 16);
	k->port = ep->port;
	k->proto = proto;
}

static bool cfg_has_vip(const struct xlb_config *cfg, const struct xlb_svc_key *k)
{
	struct xlb_svc_key c;

	for (uint32_t i = 0; i < cfg->n_services; i++) {
		svc_key(&c, &cfg->services[i].vip, cfg->services[i].proto);
		if (!memcmp(&c, k, sizeof(c)))
			return true;
	}
	return false;
}

static bool cfg_has_backend(const struct xlb_config *cfg, const struct xlb_svc_key *k)
{
	struct xlb_svc_key c;

	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *s = &cfg->services[i];

		for (uint32_t j = 0; j < s->n_backends; j++) {
			svc_key(&c, &s->backends[j].ep, s->proto);
			if (!memcmp(&c, k, sizeof(c)))
				return true;
		}
	}
	return false;
}

/* Delete the keys of map_fd that `keep` rejects. Keys are collected first:
 * deleting while iterating a hash map can restart the walk. */
static int prune(int map_fd, const struct xlb_config *cfg,
		 bool (*keep)(const struct xlb_config *, const struct xlb_svc_key *))
{
	struct xlb_svc_key key, next, *stale = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;
	int err = 0;

	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		if (!keep(cfg, &next)) {
			if (n == cap) {
				struct xlb_svc_key *p;

				cap = cap ? cap * 2 : 64;
				p = realloc(stale, cap * sizeof(*p));
				if (!p) {
					err = -ENOMEM;
					goto out;
				}
				stale = p;
			}
			stale[n++] = next;
		}
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(map_fd, &stale[i]);
out:
	free(stale);
	return err;
}

int xlb_xdp_sync_services(struct xlb_xdp *x, const struct xlb_config *cfg)
{
	int vips = bpf_map__fd(x->skel->maps.vips);
	int backends = bpf_map__fd(x->skel->maps.backends);
	struct xlb_svc_key k;
	int err;

	/* Add first, then prune: a service present in both configs is never
	 * missing from the map, so its traffic keeps flowing during a reload. */
	for (uint32_t i = 0; i < cfg->n_services; i++) {
		const struct xlb_service_conf *s = &cfg->services[i];
		struct xlb_svc_val v = { .service_id = i };

		svc_key(&k, &s->vip, s->proto);
		if (bpf_map_update_elem(vips, &k, &v, BPF_ANY))
			goto map_err;
		for (uint32_t j = 0; j < s->n_backends; j++) {
			svc_key(&k, &s->backends[j].ep, s->proto);
			if (bpf_map_update_elem(backends, &k, &v, BPF_ANY))
				goto map_err;
		}
	}
	err = prune(vips, cfg, cfg_has_vip);
	if (!err)
		err = prune(backends, cfg, cfg_has_backend);
	return err;
map_err:
	err = -errno;
	xlb_err("cannot update the XDP steering maps: %s", strerror(errno));
	return err;
}

int xlb_xdp_set_local(struct xlb_xdp *x, const union xlb_addr *addr, bool add)
{
	int fd = bpf_map__fd(x->skel->maps.locals);
	struct xlb_local_key k;
	__u8 one = 1;

	memcpy(k.addr, addr->b, 16);
	if (add)
		return bpf_map_update_elem(fd, &k, &one, BPF_ANY) ? -errno : 0;
	if (bpf_map_delete_elem(fd, &k) && errno != ENOENT)
		return -errno;
	return 0;
}

int xlb_xdp_read_stats(const struct xlb_xdp *x, uint64_t out[XLB_XDP_STAT_MAX])
{
	int fd = bpf_map__fd(x->skel->maps.stats);
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (ncpu < 0)
		return ncpu;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (__u32 i = 0; i < XLB_XDP_STAT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, v))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += v[c];
	}
	free(v);
	return 0;
}

const char *xlb_xdp_stat_name(enum xlb_xdp_stat s)
{
	static const char *const names[XLB_XDP_STAT_MAX] = {
		[XLB_XDP_PASS_NOT_IP] = "pass_not_ip",
		[XLB_XDP_PASS_NO_MATCH] = "pass_no_match",
		[XLB_XDP_PASS_LOCAL] = "pass_local",
		[XLB_XDP_PASS_MALFORMED] = "pass_malformed",
		[XLB_XDP_PASS_FRAGMENT] = "pass_fragment",
		[XLB_XDP_REDIRECT_VIP] = "redirect_vip",
		[XLB_XDP_REDIRECT_REPLY] = "redirect_reply",
		[XLB_XDP_REDIRECT_ICMP] = "redirect_icmp",
		[XLB_XDP_REDIRECT_FAILED] = "redirect_failed",
	};

	return s < XLB_XDP_STAT_MAX ? names[s] : "?";
}
