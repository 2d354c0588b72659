/* perfmap.c — names the JIT'd functions for perf: with $MLC_PERF_MAP set,
 * each linked object's functions are appended to /tmp/perf-<pid>.map
 * ("START SIZE NAME" in hex, perf's convention for JIT code), which
 * `perf report` and `perf top` read to name samples such as k12.fused.
 *
 * Kernels have internal linkage (they are optimized as the module's own), so
 * the JIT cannot look them up by name; but the linker keeps each section of
 * the object in one piece, so a function's address is that of an exported
 * entry in its section plus their distance in the object. */
#include "cg.h"

#include <errno.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Object.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cg_perf_map_wanted(void)
{
	const char *v = getenv("MLC_PERF_MAP");
	return v && *v && strcmp(v, "0") != 0;
}

typedef struct {
	const char *section; /* its contents in the object: one per section */
	uint64_t obj, run;   /* the entry's address in the object and at run time */
} anchor;

static bool is_entry(const char *name)
{
	for (int e = 0; e < MLC_ENTRY_COUNT; e++)
		if (strcmp(name, mlc_entry_names[e]) == 0)
			return true;
	return false;
}

mlc_status cg_perf_map_write(LLVMOrcLLJITRef jit, const char *obj, size_t n, mlc_diag *d)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
	LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRange(obj, n, "mlc-jit-object", 0);
	char *msg = NULL;
	LLVMBinaryRef bin = LLVMCreateBinary(mb, NULL, &msg);
	if (!bin) {
		mlc_error_file(d, NULL, "cannot read the JIT object for the perf map: %s", msg ? msg : "?");
		LLVMDisposeMessage(msg);
		LLVMDisposeMemoryBuffer(mb);
		return MLC_EINTERNAL;
	}
	LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
	anchor an[MLC_ENTRY_COUNT];
	int na = 0;
	LLVMSymbolIteratorRef sym = LLVMObjectFileCopySymbolIterator(bin);
	for (; !LLVMObjectFileIsSymbolIteratorAtEnd(bin, sym) && na < MLC_ENTRY_COUNT; LLVMMoveToNextSymbol(sym)) {
		const char *name = LLVMGetSymbolName(sym);
		LLVMOrcExecutorAddress addr = 0;
		if (!name || !is_entry(name))
			continue;
		LLVMErrorRef err = LLVMOrcLLJITLookup(jit, &addr, name);
		if (err) {
			LLVMConsumeError(err);
			continue;
		}
		LLVMMoveToContainingSection(sec, sym);
		an[na++] = (anchor){LLVMGetSectionContents(sec), LLVMGetSymbolAddress(sym), addr};
	}
	LLVMDisposeSymbolIterator(sym);
	FILE *f = fopen(path, "a");
	if (!f) {
		mlc_error_file(d, path, "cannot write the perf map ($MLC_PERF_MAP): %s", strerror(errno));
		LLVMDisposeSectionIterator(sec);
		LLVMDisposeBinary(bin);
		LLVMDisposeMemoryBuffer(mb);
		return MLC_EUSER;
	}
	sym = LLVMObjectFileCopySymbolIterator(bin);
	for (; !LLVMObjectFileIsSymbolIteratorAtEnd(bin, sym); LLVMMoveToNextSymbol(sym)) {
		const char *name = LLVMGetSymbolName(sym);
		uint64_t size = LLVMGetSymbolSize(sym);
		if (!name || !*name || !size)
			continue;
		LLVMMoveToContainingSection(sec, sym);
		if (LLVMObjectFileIsSectionIteratorAtEnd(bin, sec))
			continue; /* undefined: a runtime function */
		const char *contents = LLVMGetSectionContents(sec), *sname = LLVMGetSectionName(sec);
		if (!sname || strncmp(sname, ".text", 5) != 0)
			continue; /* data */
		for (int i = 0; i < na; i++)
			if (an[i].section == contents) {
				uint64_t at = an[i].run + LLVMGetSymbolAddress(sym) - an[i].obj;
				fprintf(f, "%llx %llx %s\n", (unsigned long long)at, (unsigned long long)size, name);
				break;
			}
	}
	LLVMDisposeSymbolIterator(sym);
	LLVMDisposeSectionIterator(sec);
	LLVMDisposeBinary(bin);
	LLVMDisposeMemoryBuffer(mb);
	if (fclose(f) != 0) {
		mlc_error_file(d, path, "cannot write the perf map ($MLC_PERF_MAP): %s", strerror(errno));
		return MLC_EUSER;
	}
	return MLC_OK;
}
