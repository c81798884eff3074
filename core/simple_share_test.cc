#include "core/simple_share.h"
