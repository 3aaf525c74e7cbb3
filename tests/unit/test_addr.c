/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Address text forms: what a user types in the config or on xlbctl's command
 * line, and what xlbctl prints back. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "xlb/tuple.h"

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

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("addr", NULL, NULL);
	if (!s ||
	    !CU_add_test(s, "pton table and round trip", test_pton_table) ||
	    !CU_add_test(s, "pton NULL", test_pton_null) ||
	    !CU_add_test(s, "IPv4 stored mapped", test_v4_is_mapped) ||
	    !CU_add_test(s, "IPv6 bytes", test_v6_bytes) ||
	    !CU_add_test(s, "ntop errors", test_ntop_errors)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS) {
		CU_cleanup_registry();
		return 1;
	}
	failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
