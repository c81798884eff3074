#include "core/message_bus.h"
