/* Wine 8 (Debian 12's) lacks bcryptprimitives.dll, whose ProcessPrng Rust's standard library
 * takes its randomness from on Windows 10 and later. scripts/test-artifacts builds this
 * stand-in with zig into the test prefix only; Windows itself has the real one. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
