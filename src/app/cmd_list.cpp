// `strata list`: not yet written (issue 5); registers nothing until then.

#include "app/commands.h"

namespace strata::app {
void add_list_command(CLI::App&, int&) {}
}  // namespace strata::app
