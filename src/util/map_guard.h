#pragma once
// Survives a mapped file shrinking under the process. Reading a page of a
// MAP_SHARED file mapping past the file's current end raises SIGBUS, whose
// default action kills the process: one `truncate` or in-place rewrite of a
// model file by another program would take down a server and every request it
// holds. Mappings registered here are guarded instead: a SIGBUS inside one maps
// anonymous zero pages over the rest of that mapping from the faulting page,
// marks the mapping damaged, and lets the read go on (it reads zeros). The
// owner checks `map_guard_damaged` (with the file's size and mtime) after using
// the data and throws away what it computed; see `MappedFile::changed`.
//
// Limits, honestly:
// - Only SIGBUS for an address inside a registered range is absorbed. Any other
//   SIGBUS goes to the handler installed before ours (a sanitizer's), or gets
//   the default action (the process dies, as it would without this).
// - The zeros are garbage data: whatever ran on them must be discarded, which is
//   the caller's job. Pages still inside the file are not replaced, so a file
//   rewritten in place (same size) is read half old, half new until the caller
//   notices the change; nothing here can prevent that, only detect it.
// - At most `kMapGuardSlots` mappings are guarded at once; more are mapped
//   unguarded (as before this existed).
// - The handler is process-wide and installed on first registration; a program
//   that later installs its own SIGBUS handler replaces it. ASan and TSan
//   install theirs at start-up and, with their default `handle_sigbus=1`, let
//   ours replace it (foreign faults still reach theirs, so their reports stay);
//   with `handle_sigbus=2` they refuse ours and a truncation kills as before.
// - A range must be unregistered before it is unmapped; a fault racing with
//   that unmapping is a use-after-unmap bug of the caller either way.

#include <cstddef>

namespace strata {

inline constexpr int kMapGuardSlots = 256;

// Registers [base, base + len) (a whole mapping, `base` page-aligned); a slot
// number for the calls below, or -1 when every slot is taken. Installs the
// SIGBUS handler on first use.
int map_guard_register(const void* base, size_t len);
// Forgets the slot's range; call before unmapping it.
void map_guard_unregister(int slot);
// Whether a SIGBUS was absorbed in the slot's range since it was registered.
bool map_guard_damaged(int slot);

}  // namespace strata
