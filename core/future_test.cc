#include "core/future.h"
