#include "core/worker_manager.h"
