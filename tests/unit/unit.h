/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one CUnit runner the table-driven test programs share: register one
 * suite of tests, run it verbosely, and turn the outcome into an exit
 * status (1 on any failed assertion, a suite whose init failed, or a CUnit
 * error).
 */
#ifndef XLB_TEST_UNIT_H
#define XLB_TEST_UNIT_H

#include <stddef.h>
#include <stdio.h>

#include <CUnit/Basic.h>

struct unit_test {
	const char *name;
	CU_TestFunc fn;
};

static inline int unit_run(const char *suite_name, CU_InitializeFunc init, CU_CleanupFunc clean,
			   const struct unit_test *tests, size_t n)
{
	unsigned failures;
	CU_pSuite suite;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite(suite_name, init, clean);
	if (!suite)
		goto err;
	for (size_t i = 0; i < n; i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto err;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (CU_basic_run_tests() != CUE_SUCCESS)
		goto err;
	failures = CU_get_number_of_failures();
	/* A suite whose init failed runs nothing and counts no failure. */
	if (CU_get_run_summary()->nSuitesFailed)
		failures++;
	CU_cleanup_registry();
	return failures != 0;
err:
	fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 1;
}

#define UNIT_RUN(name, init, clean, tests) \
	unit_run((name), (init), (clean), (tests), sizeof(tests) / sizeof((tests)[0]))

#endif
