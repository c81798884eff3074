#include "core/share.h"
