/* tether/common.h — conventions shared by every configuration struct of the library (server,
 * client, bench): a field left 0 takes its documented default, TT_OFF disables the limit or
 * the feature it names. */
#ifndef TETHER_COMMON_H
#define TETHER_COMMON_H

#define TT_OFF (-1) /* a duration, limit or feature that is disabled */

/* Returned by a streaming body callback (server request bodies, client response bodies): stop
 * delivering until the matching resume call; the socket is not read meanwhile (TCP
 * backpressure). */
#define TT_BODY_PAUSE 1

#endif
