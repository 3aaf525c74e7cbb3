/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Text forms of union xlb_addr and struct xlb_endpoint. IPv4 is kept
 * IPv4-mapped (::ffff:a.b.c.d) so one compare serves both families; the
 * family travels beside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

static int refuse(int ret, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int refuse(int ret, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* Decimal digits only: "+80", " 80", "0x50" or "80x" are typing errors,
 * not ports strtoul(3) should half-read. */
static int parse_port(const char *s, uint16_t *port, char *why, size_t whylen)
{
	/* A reason names the port, but not a page of it. */
	int shown = (int)strnlen(s, 16);
	const char *more = s[shown] ? "..." : "";
	uint32_t v = 0;

	if (!*s)
		return refuse(-EINVAL, why, whylen, "no port after ':'");
	for (const char *d = s; *d; d++) {
		if (*d < '0' || *d > '9')
			return refuse(-EINVAL, why, whylen, "bad port \"%.*s%s\"", shown, s, more);
		if (v <= 65535)
			v = v * 10 + (uint32_t)(*d - '0');
	}
	if (v < 1 || v > 65535)
		return refuse(-ERANGE, why, whylen, "bad port \"%.*s%s\"", shown, s, more);
	*port = htons((uint16_t)v);
	return 0;
}

/* The address text a[0..n) of an endpoint, as its own string. */
static int parse_host(const char *a, size_t n, struct xlb_endpoint *ep)
{
	char text[INET6_ADDRSTRLEN];

	if (n >= sizeof(text))
		return -EINVAL;
	memcpy(text, a, n);
	text[n] = '\0';
	return xlb_addr_pton(text, &ep->addr, &ep->family);
}

int xlb_endpoint_pton(const char *s, unsigned int flags, struct xlb_endpoint *ep,
		      char *why, size_t whylen)
{
	const char *port = NULL, *colon;

	memset(ep, 0, sizeof(*ep));
	if (!s || !*s)
		return refuse(-EINVAL, why, whylen, "empty");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return refuse(-EINVAL, why, whylen, "bad endpoint");
		if (parse_host(s + 1, (size_t)(close - s - 1), ep) || ep->family != AF_INET6)
			return refuse(-EINVAL, why, whylen, "not an IPv6 address in brackets");
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':')) {
			/* Two colons or more: IPv6. Bare, it cannot carry a
			 * port: "2001:2::2:80" is an address. */
			if (!(flags & XLB_EP_BARE_IPV6))
				return refuse(-EINVAL, why, whylen,
					      "IPv6 addresses need brackets: [ADDR]:PORT");
			if (xlb_addr_pton(s, &ep->addr, &ep->family) || ep->family != AF_INET6)
				return refuse(-EINVAL, why, whylen, "not an IPv6 address");
		} else {
			if (parse_host(s, colon ? (size_t)(colon - s) : strlen(s), ep) ||
			    ep->family != AF_INET)
				return refuse(-EINVAL, why, whylen,
					      flags & XLB_EP_BARE_IPV6 ?
					      "not an IPv4 or IPv6 address" :
					      "not an IPv4 address");
			if (colon)
				port = colon + 1;
		}
	}
	if (!port) {
		if (!(flags & XLB_EP_PORT_OPTIONAL))
			return refuse(-EINVAL, why, whylen, "no port");
		return 0;
	}
	return parse_port(port, &ep->port, why, whylen);
}
