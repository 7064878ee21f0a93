#include "app/commands.h"

namespace strata::app {
void add_synth_command(CLI::App&, int&) {}
}  // namespace strata::app
