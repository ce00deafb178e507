/* version.c — tt_version. */
#include "tether/version.h"
#include "common/api.h"

TT_API const char *tt_version(void)
{
    return TT_VERSION_STRING;
}
