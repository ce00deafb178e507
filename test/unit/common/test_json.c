/* test_json.c — the one JSON writer: nesting and separators, escaping, numbers, the fixed
 * buffer's snprintf-like contract and the indented form. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tether/json.h"

Test(json, nested_compact)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_int(&j, "a", -3);
    tt_json_array(&j, "b");
    tt_json_uint(&j, NULL, 18446744073709551615ull);
    tt_json_bool(&j, NULL, 1);
    tt_json_null(&j, NULL);
    tt_json_object(&j, NULL);
    tt_json_end(&j);
    tt_json_array(&j, NULL);
    tt_json_end(&j);
    tt_json_end(&j);
    tt_json_str(&j, "c", "x");
    tt_json_double(&j, "d", 1.25, 2);
    tt_json_double(&j, "e", NAN, 2);
    tt_json_raw(&j, "f", "[1,2]");
    tt_json_end(&j);
    cr_assert_str_eq(j.buf, "{\"a\":-3,\"b\":[18446744073709551615,true,null,{},[]],\"c\":\"x\","
                            "\"d\":1.25,\"e\":null,\"f\":[1,2]}");
    cr_assert_eq(j.len, strlen(j.buf));
    cr_assert_eq(j.err, 0);
    tt_json_free(&j);
}

Test(json, escapes_quotes_backslashes_and_controls)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_object(&j, NULL);
    tt_json_strn(&j, "k\"", "a\"b\\c\n\r\t\x01\x7f\xc3\xa9", 12);
    tt_json_str(&j, "n", NULL);
    tt_json_end(&j);
    cr_assert_str_eq(j.buf, "{\"k\\\"\":\"a\\\"b\\\\c\\n\\r\\t\\u0001\x7f\xc3\xa9\",\"n\":null}");
    tt_json_free(&j);
}

Test(json, fixed_buffer_cuts_and_counts_like_snprintf)
{
    char buf[8];
    tt_json j;
    tt_json_init_fixed(&j, buf, sizeof buf, 0);
    tt_json_object(&j, NULL);
    tt_json_str(&j, "key", "value");
    tt_json_end(&j);
    const char *full = "{\"key\":\"value\"}";
    cr_assert_eq(j.len, strlen(full));
    cr_assert_str_eq(buf, "{\"key\":");
    char big[64];
    tt_json_init_fixed(&j, big, sizeof big, 0);
    tt_json_object(&j, NULL);
    tt_json_str(&j, "key", "value");
    tt_json_end(&j);
    cr_assert_str_eq(big, full);
    tt_json_free(&j); /* harmless on a fixed writer */
    cr_assert_str_eq(big, full);
}

Test(json, indented)
{
    tt_json j;
    tt_json_init(&j, 2);
    tt_json_object(&j, NULL);
    tt_json_int(&j, "a", 1);
    tt_json_array(&j, "b");
    tt_json_int(&j, NULL, 2);
    tt_json_end(&j);
    tt_json_object(&j, "c");
    tt_json_end(&j);
    tt_json_end(&j);
    cr_assert_str_eq(j.buf, "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ],\n  \"c\": {}\n}");
    tt_json_free(&j);
}

Test(json, grows_past_its_first_block)
{
    tt_json j;
    tt_json_init(&j, 0);
    tt_json_array(&j, NULL);
    for (int i = 0; i < 10000; i++)
        tt_json_int(&j, NULL, i);
    tt_json_end(&j);
    cr_assert_eq(j.err, 0);
    cr_assert_eq(j.len, strlen(j.buf));
    cr_assert(!strncmp(j.buf, "[0,1,2,", 7));
    cr_assert(!strcmp(j.buf + j.len - 6, ",9999]"));
    tt_json_free(&j);
}
