/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Address text forms: what a user types in the config or on xlbctl's command
 * line, and what xlbctl prints back. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "xlb/tuple.h"
#include "unit.h"

struct pton_case {
	const char *text;
	int ret;
	uint8_t family;
	const char *canonical;   /* what ntop prints back */
};

static const struct pton_case pton_cases[] = {
	{ "198.18.0.100", 0, AF_INET, "198.18.0.100" },
	{ "0.0.0.0", 0, AF_INET, "0.0.0.0" },
	{ "255.255.255.255", 0, AF_INET, "255.255.255.255" },
	{ "2001:2::100", 0, AF_INET6, "2001:2::100" },
	{ "2001:0002:0000:0000:0000:0000:0000:0100", 0, AF_INET6, "2001:2::100" },
	{ "2001:2:0:2::2", 0, AF_INET6, "2001:2:0:2::2" },
	{ "::1", 0, AF_INET6, "::1" },
	{ "::", 0, AF_INET6, "::" },
	{ "FE80::A", 0, AF_INET6, "fe80::a" },
	/* Refused: mapped literals would collide with the IPv4 form. */
	{ "::ffff:198.18.0.1", -EINVAL, 0, NULL },
	{ "198.18.0", -EINVAL, 0, NULL },
	{ "198.18.0.256", -EINVAL, 0, NULL },
	{ "198.18.0.1 ", -EINVAL, 0, NULL },
	{ " 198.18.0.1", -EINVAL, 0, NULL },
	{ "198.18.0.1:80", -EINVAL, 0, NULL },
	{ "[2001:2::1]", -EINVAL, 0, NULL },
	{ "2001:2::1::2", -EINVAL, 0, NULL },
	{ "fe80::1%lo", -EINVAL, 0, NULL },
	{ "web.example", -EINVAL, 0, NULL },
	{ "", -EINVAL, 0, NULL },
};

static void test_pton_table(void)
{
	for (size_t i = 0; i < sizeof(pton_cases) / sizeof(pton_cases[0]); i++) {
		const struct pton_case *t = &pton_cases[i];
		union xlb_addr a;
		uint8_t family = 0xff;
		char buf[XLB_ADDRSTRLEN];
		int ret = xlb_addr_pton(t->text, &a, &family);

		if (ret != t->ret)
			fprintf(stderr, "pton(\"%s\") = %d, want %d\n", t->text, ret, t->ret);
		CU_ASSERT_EQUAL(ret, t->ret);
		if (ret || t->ret)
			continue;
		CU_ASSERT_EQUAL(family, t->family);
		CU_ASSERT_PTR_EQUAL(xlb_addr_ntop(&a, family, buf, sizeof(buf)), buf);
		CU_ASSERT_STRING_EQUAL(buf, t->canonical);
	}
}

static void test_pton_null(void)
{
	union xlb_addr a;
	uint8_t family;

	CU_ASSERT_EQUAL(xlb_addr_pton(NULL, &a, &family), -EINVAL);
}

/* IPv4 must be stored mapped, so it compares equal to what the packet
 * parser builds with xlb_addr_from_v4. */
static void test_v4_is_mapped(void)
{
	union xlb_addr a, b;
	uint8_t family;

	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("198.18.2.3", &a, &family), 0);
	CU_ASSERT_TRUE(xlb_addr_is_v4mapped(&a));
	xlb_addr_from_v4(&b, htonl(0xc6120203));
	CU_ASSERT_TRUE(xlb_addr_eq(&a, &b));
	CU_ASSERT_EQUAL(xlb_addr_v4(&a), htonl(0xc6120203));
	static const uint8_t want[16] = { [10] = 0xff, [11] = 0xff, 198, 18, 2, 3 };
	CU_ASSERT_EQUAL(memcmp(a.b, want, 16), 0);
}

static void test_v6_bytes(void)
{
	union xlb_addr a;
	uint8_t family;
	static const uint8_t want[16] = { 0x20, 0x01, 0x00, 0x02, [15] = 0x01 };

	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("2001:2::1", &a, &family), 0);
	CU_ASSERT_EQUAL(family, AF_INET6);
	CU_ASSERT_FALSE(xlb_addr_is_v4mapped(&a));
	CU_ASSERT_EQUAL(memcmp(a.b, want, 16), 0);
}

static void test_ntop_errors(void)
{
	union xlb_addr a;
	uint8_t family;
	char small[8];
	char buf[XLB_ADDRSTRLEN];

	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("2001:2::100", &a, &family), 0);
	errno = 0;
	CU_ASSERT_PTR_NULL(xlb_addr_ntop(&a, AF_INET6, small, sizeof(small)));
	CU_ASSERT_EQUAL(errno, ENOSPC);
	errno = 0;
	CU_ASSERT_PTR_NULL(xlb_addr_ntop(&a, 99, buf, sizeof(buf)));
	CU_ASSERT_EQUAL(errno, EAFNOSUPPORT);

	/* The longest IPv6 text fits XLB_ADDRSTRLEN. */
	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", &a,
					    &family), 0);
	CU_ASSERT_PTR_NOT_NULL(xlb_addr_ntop(&a, AF_INET6, buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
}

/* ---- endpoints ------------------------------------------------------------ */

#define OPT  XLB_EP_PORT_OPTIONAL
#define BARE XLB_EP_BARE_IPV6

struct ep_case {
	const char *text;
	unsigned int flags;
	int ret;
	const char *want;        /* ret 0: xlb_endpoint_ntop of the result;
				  * otherwise: the reason, exactly */
};

static const struct ep_case ep_cases[] = {
	/* What every caller takes. */
	{ "198.18.2.2:8080", 0, 0, "198.18.2.2:8080" },
	{ "[2001:2::2]:8080", 0, 0, "[2001:2::2]:8080" },
	{ "[2001:0002:0000::0002]:1", 0, 0, "[2001:2::2]:1" },
	{ "198.18.2.2:65535", 0, 0, "198.18.2.2:65535" },
	{ "198.18.2.2:0080", 0, 0, "198.18.2.2:80" },
	{ "0.0.0.0:9100", 0, 0, "0.0.0.0:9100" },   /* policy is the caller's */
	{ "[::]:9100", 0, 0, "[::]:9100" },
	{ "198.18.2.2:8080", OPT | BARE, 0, "198.18.2.2:8080" },
	/* The port left out, where a caller allows it: 0. */
	{ "198.18.2.2", OPT, 0, "198.18.2.2:0" },
	{ "[2001:2::2]", OPT, 0, "[2001:2::2]:0" },
	{ "2001:2::2", OPT | BARE, 0, "[2001:2::2]:0" },
	/* Bare IPv6 never has a port: this is one address. */
	{ "2001:2::2:80", OPT | BARE, 0, "[2001:2::2:80]:0" },
	{ "2001:2::2", BARE, -EINVAL, "no port" },
	/* Brackets. */
	{ "[2001:2::2:8080", 0, -EINVAL, "bad endpoint" },
	{ "[2001:2::2]8080", 0, -EINVAL, "bad endpoint" },
	{ "[2001:2::2]x", OPT, -EINVAL, "bad endpoint" },
	{ "[[2001:2::2]]:80", 0, -EINVAL, "bad endpoint" },
	{ "2001:2::2]:8080", 0, -EINVAL, "IPv6 addresses need brackets: [ADDR]:PORT" },
	{ "2001:2::2:8080", 0, -EINVAL, "IPv6 addresses need brackets: [ADDR]:PORT" },
	{ "2001:2::2", OPT, -EINVAL, "IPv6 addresses need brackets: [ADDR]:PORT" },
	{ "198.18.2.2:80:80", 0, -EINVAL, "IPv6 addresses need brackets: [ADDR]:PORT" },
	{ "2001:2::2]", BARE, -EINVAL, "not an IPv6 address" },
	{ "[198.18.2.2]:80", 0, -EINVAL, "not an IPv6 address in brackets" },
	{ "[198.18.2.2]", OPT | BARE, -EINVAL, "not an IPv6 address in brackets" },
	{ "[]:80", 0, -EINVAL, "not an IPv6 address in brackets" },
	{ "[::ffff:198.18.2.2]:80", 0, -EINVAL, "not an IPv6 address in brackets" },
	{ "[fe80::1%lo]:80", 0, -EINVAL, "not an IPv6 address in brackets" },
	{ "[2001:0002:0000:0000:0000:0000:0000:0002:0000:0000:0000:0000]:80", 0, -EINVAL,
	  "not an IPv6 address in brackets" },
	/* Addresses. */
	{ "198.18.2.300:80", 0, -EINVAL, "not an IPv4 address" },
	{ "web:80", 0, -EINVAL, "not an IPv4 address" },
	{ ":80", 0, -EINVAL, "not an IPv4 address" },
	{ " 198.18.2.2:80", 0, -EINVAL, "not an IPv4 address" },
	{ "web", OPT | BARE, -EINVAL, "not an IPv4 or IPv6 address" },
	{ "", OPT | BARE, -EINVAL, "empty" },
	/* Ports. */
	{ "198.18.2.2", 0, -EINVAL, "no port" },
	{ "[2001:2::2]", 0, -EINVAL, "no port" },
	{ "198.18.2.2:", OPT, -EINVAL, "no port after ':'" },
	{ "[2001:2::2]:", OPT, -EINVAL, "no port after ':'" },
	{ "198.18.2.2:0", 0, -ERANGE, "bad port \"0\"" },
	{ "198.18.2.2:65536", 0, -ERANGE, "bad port \"65536\"" },
	{ "[2001:2::2]:65536", OPT, -ERANGE, "bad port \"65536\"" },
	{ "198.18.2.2:4294967377", 0, -ERANGE, "bad port \"4294967377\"" },   /* 2^32 + 81 */
	{ "198.18.2.2:99999999999999999999", 0, -ERANGE, "bad port \"9999999999999999...\"" },
	{ "198.18.2.2:80x", 0, -EINVAL, "bad port \"80x\"" },
	{ "198.18.2.2:80 ", 0, -EINVAL, "bad port \"80 \"" },
	{ "198.18.2.2: 80", 0, -EINVAL, "bad port \" 80\"" },
	{ "198.18.2.2:+80", 0, -EINVAL, "bad port \"+80\"" },
	{ "198.18.2.2:-1", 0, -EINVAL, "bad port \"-1\"" },
	{ "198.18.2.2:0x50", 0, -EINVAL, "bad port \"0x50\"" },
	{ "198.18.2.2:http", 0, -EINVAL, "bad port \"http\"" },
	{ "[2001:2::2]:80:80", 0, -EINVAL, "bad port \"80:80\"" },
};

static void test_endpoint_table(void)
{
	for (size_t i = 0; i < sizeof(ep_cases) / sizeof(ep_cases[0]); i++) {
		const struct ep_case *t = &ep_cases[i];
		struct xlb_endpoint ep;
		char why[XLB_EP_WHYLEN] = "", buf[XLB_ENDPOINTSTRLEN];
		int ret = xlb_endpoint_pton(t->text, t->flags, &ep, why, sizeof(why));
		const char *got = ret ? why : xlb_endpoint_ntop(&ep, buf, sizeof(buf));

		if (ret != t->ret || strcmp(got, t->want))
			fprintf(stderr, "endpoint_pton(\"%s\", %#x) = %d \"%s\", want %d \"%s\"\n",
				t->text, t->flags, ret, got, t->ret, t->want);
		CU_ASSERT_EQUAL(ret, t->ret);
		CU_ASSERT_STRING_EQUAL(got, t->want);
	}
}

/* The port comes back in network order, the address as xlb_addr_pton
 * stores it, and every text xlb_endpoint_ntop writes parses back. */
static void test_endpoint_fields(void)
{
	static const char *const texts[] = { "198.18.2.2:8080", "[2001:2:0:2::2]:443",
					     "[2001:2::100]:65535", "198.18.0.1:1" };
	struct xlb_endpoint ep, again;
	union xlb_addr a;
	uint8_t family;
	char buf[XLB_ENDPOINTSTRLEN];

	CU_ASSERT_EQUAL_FATAL(xlb_endpoint_pton("198.18.2.2:8080", 0, &ep, NULL, 0), 0);
	CU_ASSERT_EQUAL(ep.port, htons(8080));
	CU_ASSERT_EQUAL(ep.family, AF_INET);
	CU_ASSERT_EQUAL_FATAL(xlb_addr_pton("198.18.2.2", &a, &family), 0);
	CU_ASSERT_TRUE(xlb_addr_eq(&ep.addr, &a));

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(xlb_endpoint_pton(texts[i], 0, &ep, NULL, 0), 0);
		xlb_endpoint_ntop(&ep, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, texts[i]);
		CU_ASSERT_EQUAL_FATAL(xlb_endpoint_pton(buf, 0, &again, NULL, 0), 0);
		CU_ASSERT_TRUE(xlb_addr_eq(&ep.addr, &again.addr));
		CU_ASSERT_EQUAL(ep.port, again.port);
		CU_ASSERT_EQUAL(ep.family, again.family);
	}
}

/* No reason buffer, or a small one: the error still comes back, and the
 * reason is cut, never overrun. */
static void test_endpoint_reason_buffer(void)
{
	struct xlb_endpoint ep;
	char small[8 + 1];

	CU_ASSERT_EQUAL(xlb_endpoint_pton(NULL, OPT, &ep, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(xlb_endpoint_pton("198.18.2.2:0", 0, &ep, NULL, 16), -ERANGE);
	memset(small, 'x', sizeof(small));
	CU_ASSERT_EQUAL(xlb_endpoint_pton("198.18.2.2:70000", 0, &ep, small, sizeof(small) - 1),
			-ERANGE);
	CU_ASSERT_STRING_EQUAL(small, "bad por");
	CU_ASSERT_EQUAL(small[8], 'x');
}

int main(void)
{
	static const struct unit_test tests[] = {
		{ "pton table and round trip", test_pton_table },
		{ "pton NULL", test_pton_null },
		{ "IPv4 stored mapped", test_v4_is_mapped },
		{ "IPv6 bytes", test_v6_bytes },
		{ "ntop errors", test_ntop_errors },
		{ "endpoint pton table", test_endpoint_table },
		{ "endpoint fields and round trip", test_endpoint_fields },
		{ "endpoint reason buffer", test_endpoint_reason_buffer },
	};

	return UNIT_RUN("addr", NULL, NULL, tests);
}
