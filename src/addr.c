/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Text forms of union xlb_addr. IPv4 is kept IPv4-mapped (::ffff:a.b.c.d)
 * so one compare serves both families; the family travels beside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include "xlb/tuple.h"

/*
 * Accepts dotted-quad IPv4 or any IPv6 text inet_pton(3) accepts (no
 * brackets, no scope). An IPv4-mapped IPv6 literal (::ffff:198.18.0.1) is
 * refused: it would be stored exactly like the IPv4 address, yet claim to be
 * IPv6, and the two could never be told apart again.
 */
int xlb_addr_pton(const char *s, union xlb_addr *a, uint8_t *family)
{
	struct in_addr v4;
	union xlb_addr v6;

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		xlb_addr_from_v4(a, v4.s_addr);
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, v6.b) == 1 && !xlb_addr_is_v4mapped(&v6)) {
		*a = v6;
		*family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/*
 * Writes the canonical text (RFC 5952 for IPv6, as inet_ntop) into buf and
 * returns buf; NULL with errno EAFNOSUPPORT for an unknown family or ENOSPC
 * when buf is too small (XLB_ADDRSTRLEN always fits). For AF_INET only the
 * low 32 bits are printed.
 */
const char *xlb_addr_ntop(const union xlb_addr *a, uint8_t family, char *buf, size_t len)
{
	switch (family) {
	case AF_INET:
		return inet_ntop(AF_INET, &a->w[3], buf, len);
	case AF_INET6:
		return inet_ntop(AF_INET6, a->b, buf, len);
	default:
		errno = EAFNOSUPPORT;
		return NULL;
	}
}

const char *xlb_endpoint_ntop(const struct xlb_endpoint *ep, char *buf, size_t len)
{
	char a[XLB_ADDRSTRLEN];

	if (!xlb_addr_ntop(&ep->addr, ep->family, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, ep->family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(ep->port));
	return buf;
}
