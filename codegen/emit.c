/* emit.c — writes the module of a planned graph as LLVM IR (before or after
 * optimization), host assembly, or a PIC object file (for AOT use and for
 * looking at what the vectorizer made of a kernel). */
#include "cg.h"
#include "../runtime/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A file is written atomically (runtime/atomic.c), "-" is stdout. */
static mlc_status write_out(const char *path, const char *data, size_t len, mlc_diag *d)
{
	if (strcmp(path, "-") == 0) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
			mlc_error_file(d, NULL, "write failed: %s", strerror(errno));
			return MLC_EIO;
		}
		return MLC_OK;
	}
	mlc_atomic a;
	mlc_status st = mlc_atomic_open(&a, path, d);
	if (st != MLC_OK)
		return st;
	fwrite(data, 1, len, a.f); /* a failure shows in the commit */
	return mlc_atomic_commit(&a, d);
}

/* Machine code goes through a memory buffer rather than
 * LLVMTargetMachineEmitToFile so that "-" works and I/O errors carry errno. */
static mlc_status emit_machine(LLVMTargetMachineRef tm, LLVMModuleRef mod, LLVMCodeGenFileType kind,
			       const char *path, mlc_diag *d)
{
	char *err = NULL;
	LLVMMemoryBufferRef buf = NULL;
	if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, kind, &err, &buf)) {
		mlc_error_file(d, NULL, "LLVM code generation failed: %s", err ? err : "?");
		LLVMDisposeMessage(err);
		return MLC_EINTERNAL;
	}
	mlc_status st = write_out(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), d);
	LLVMDisposeMemoryBuffer(buf);
	return st;
}

mlc_status mlc_emit(const mlc_graph *g, mlc_emit_kind kind, const char *path, mlc_diag *d)
{
	LLVMTargetMachineRef tm = cg_host_tm(d);
	if (!tm)
		return MLC_EINTERNAL;
	LLVMContextRef ctx = LLVMContextCreate();
	LLVMModuleRef mod = NULL;
	bool has[MLC_ENTRY_COUNT];
	mlc_status st = cg_build_module(g, ctx, tm, false, NULL, d, &mod, has);
	if (st == MLC_OK && kind != MLC_EMIT_LLVM)
		st = cg_optimize(mod, tm, d);
	if (st == MLC_OK) {
		switch (kind) {
		case MLC_EMIT_LLVM:
		case MLC_EMIT_LLVM_OPT: {
			char *text = LLVMPrintModuleToString(mod);
			st = write_out(path, text, strlen(text), d);
			LLVMDisposeMessage(text);
			break;
		}
		case MLC_EMIT_ASM: st = emit_machine(tm, mod, LLVMAssemblyFile, path, d); break;
		case MLC_EMIT_OBJ: st = emit_machine(tm, mod, LLVMObjectFile, path, d); break;
		}
	}
	if (mod)
		LLVMDisposeModule(mod);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return st;
}
