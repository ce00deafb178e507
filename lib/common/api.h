/* api.h — internal: symbol visibility. The library builds with -fvisibility=hidden;
 * every public function definition is marked TT_API. */
#ifndef TT_COMMON_API_H
#define TT_COMMON_API_H

#define TT_API         __attribute__((visibility("default")))
#define TT_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TT_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
