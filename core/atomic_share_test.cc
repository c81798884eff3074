#include "core/atomic_share.h"
