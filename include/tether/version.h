/* tether/version.h — library version. */
#ifndef TETHER_VERSION_H
#define TETHER_VERSION_H

#define TT_VERSION_MAJOR  0
#define TT_VERSION_MINOR  1
#define TT_VERSION_PATCH  0
#define TT_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif
/* The version of the linked library ("0.1.0"); static storage. */
const char *tt_version(void);
#ifdef __cplusplus
}
#endif
#endif
