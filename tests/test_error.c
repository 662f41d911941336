/* test_error.c - rlab_strerror and the numbering of racelab's codes. */
#include <string.h>

#include "rlab_test.h"

static const int own_codes[] = {RLAB_EBROKEN, RLAB_ESHUTDOWN, RLAB_ECANCELLED,
                                RLAB_EEOF, RLAB_EOWNERDEAD};

START_TEST(own_codes_are_clear_of_errno_and_distinct)
{
    for (size_t i = 0; i < sizeof own_codes / sizeof *own_codes; i++) {
        ck_assert_int_gt(own_codes[i], 4095); /* Linux errno values stay below */
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(own_codes[i], own_codes[j]);
    }
}
END_TEST

START_TEST(every_own_code_has_its_own_message)
{
    for (size_t i = 0; i < sizeof own_codes / sizeof *own_codes; i++) {
        const char *m = rlab_strerror(own_codes[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_ne(m, rlab_strerror(-1));
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(m, rlab_strerror(own_codes[j]));
    }
    ck_assert_ptr_nonnull(strstr(rlab_strerror(RLAB_EBROKEN), "broken"));
}
END_TEST

START_TEST(errno_codes_use_the_system_message)
{
    ck_assert_str_eq(rlab_strerror(EINVAL), strerror(EINVAL));
    ck_assert_str_eq(rlab_strerror(ETIMEDOUT), strerror(ETIMEDOUT));
    ck_assert_str_eq(rlab_strerror(EPERM), strerror(EPERM));
}
END_TEST

START_TEST(unknown_codes_still_get_a_message)
{
    ck_assert_ptr_nonnull(rlab_strerror(-5));
    ck_assert_ptr_nonnull(rlab_strerror(999999));
    ck_assert_str_eq(rlab_strerror(0), "success");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("strerror");
    tcase_add_test(tc, own_codes_are_clear_of_errno_and_distinct);
    tcase_add_test(tc, every_own_code_has_its_own_message);
    tcase_add_test(tc, errno_codes_use_the_system_message);
    tcase_add_test(tc, unknown_codes_still_get_a_message);
    suite_add_tcase(s, tc);
    return rlab_test_main(s);
}
