/* tether.h — umbrella header for the tether library: HTTP/1.1 persistent connections. */
#ifndef TETHER_H
#define TETHER_H

#include "tether/version.h"
#include "tether/common.h"
#include "tether/loop.h"
#include "tether/timer.h"
#include "tether/socket.h"
#include "tether/buffer.h"
#include "tether/stream.h"
#include "tether/json.h"
#include "tether/server.h"
#include "tether/sockdiag.h"
#include "tether/http1.h"
#include "tether/client.h"
#include "tether/proxy.h"

#endif
