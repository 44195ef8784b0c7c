#pragma once
// Precompiled header: CAF's templates, CLI11 and toml11 dominate emr's build time on two cores.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>
#include <toml.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>
