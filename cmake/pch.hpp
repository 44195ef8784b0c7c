#pragma once
// Precompiled header: CAF's templates and Boost.JSON dominate emr's build time on two cores.
#include <boost/json.hpp>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>
