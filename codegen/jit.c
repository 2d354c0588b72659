/* jit.c — compiles a planned graph in memory with ORC LLJIT and hands out the
 * entry points. Each mlc_jit owns its own LLJIT, context and symbols, so any
 * number can live side by side. */
#include "cg.h"

#include "../runtime/pool.h"

#include <cblas.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <math.h>
#include <stdlib.h>

struct mlc_jit {
	LLVMOrcLLJITRef lljit;
	mlc_diag *d; /* set while compiling, for errors ORC reports out of band */
	mlc_entry_fn entry[MLC_ENTRY_COUNT];
};

/* ORC's default reporter prints to stderr; route into the diagnostics. */
static void report_session_error(void *ctx, LLVMErrorRef err)
{
	mlc_jit *j = ctx;
	if (j->d)
		cg_llvm_error(j->d, "JIT session error", err);
	else
		LLVMConsumeError(err);
}

/* The functions generated code calls by name, bound to this process's own
 * addresses. Taking them from C keeps libopenblas linked even under
 * --as-needed and does not depend on the dynamic symbol table. */
static mlc_status define_runtime_symbols(LLVMOrcLLJITRef j, mlc_diag *d)
{
	static const struct {
		const char *name;
		void (*addr)(void);
	} syms[] = {
		{"cblas_sgemm", (void (*)(void))cblas_sgemm},
		{"expf", (void (*)(void))expf},
		{"logf", (void (*)(void))logf},
		{"mlc_parallel_for", (void (*)(void))mlc_parallel_for},
	};
	LLVMOrcCSymbolMapPair pairs[MLC_COUNTOF(syms)];
	for (size_t i = 0; i < MLC_COUNTOF(syms); i++) {
		pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j, syms[i].name);
		pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
		pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported |
						  LLVMJITSymbolGenericFlagsCallable;
		pairs[i].Sym.Flags.TargetFlags = 0;
	}
	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j);
	LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, MLC_COUNTOF(pairs));
	LLVMErrorRef err = LLVMOrcJITDylibDefine(jd, mu);
	if (err) {
		LLVMOrcDisposeMaterializationUnit(mu);
		return cg_llvm_error(d, "cannot define runtime symbols for the JIT", err);
	}
	/* Anything else the backend may call (memset, compiler-rt helpers)
	 * resolves against the process. */
	LLVMOrcDefinitionGeneratorRef gen;
	err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j),
								   NULL, NULL);
	if (err)
		return cg_llvm_error(d, "cannot search the process for JIT symbols", err);
	LLVMOrcJITDylibAddGenerator(jd, gen);
	return MLC_OK;
}

static mlc_status create_lljit(mlc_jit *j, mlc_diag *d)
{
	/* The JIT's code generator gets its own target machine (it takes
	 * ownership), configured like the one the optimizer used. */
	LLVMTargetMachineRef tm = cg_host_tm(d);
	if (!tm)
		return MLC_EINTERNAL;
	LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder,
						      LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
	LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->lljit, builder);
	if (err) {
		j->lljit = NULL;
		return cg_llvm_error(d, "cannot create the LLVM JIT", err);
	}
	LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit),
						report_session_error, j);
	return define_runtime_symbols(j->lljit, d);
}

mlc_status mlc_jit_compile(const mlc_graph *g, mlc_diag *d, mlc_jit **out)
{
	*out = NULL;
	LLVMTargetMachineRef tm = cg_host_tm(d);
	if (!tm)
		return MLC_EINTERNAL;
	LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
	LLVMModuleRef mod = NULL;
	bool has[MLC_ENTRY_COUNT];
	mlc_status st = cg_build_module(g, LLVMOrcThreadSafeContextGetContext(tsctx), tm, d, &mod, has);
	if (st == MLC_OK) {
		st = cg_optimize(mod, tm, d);
		if (st != MLC_OK)
			LLVMDisposeModule(mod);
	}
	LLVMDisposeTargetMachine(tm);
	mlc_jit *j = mlc_xmalloc(sizeof *j);
	j->d = d;
	if (st == MLC_OK) {
		st = create_lljit(j, d);
		if (st != MLC_OK)
			LLVMDisposeModule(mod);
	}
	if (st != MLC_OK) {
		LLVMOrcDisposeThreadSafeContext(tsctx);
		mlc_jit_free(j);
		return st;
	}
	/* The module now belongs to the JIT; the JIT keeps the context alive. */
	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsctx);
	LLVMOrcDisposeThreadSafeContext(tsctx);
	LLVMOrcLLJITRef lljit = j->lljit;
	LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModule(lljit, LLVMOrcLLJITGetMainJITDylib(lljit), tsm);
	if (err)
		st = cg_llvm_error(d, "cannot add the module to the JIT", err);
	/* Machine code is generated at the first lookup. */
	for (int e = 0; e < MLC_ENTRY_COUNT && st == MLC_OK; e++) {
		if (!has[e])
			continue;
		LLVMOrcExecutorAddress addr = 0;
		err = LLVMOrcLLJITLookup(lljit, &addr, mlc_entry_names[e]);
		if (err)
			st = cg_llvm_error(d, "JIT compilation failed", err);
		else
			j->entry[e] = (mlc_entry_fn)(uintptr_t)addr;
	}
	j->d = NULL;
	if (st != MLC_OK) {
		mlc_jit_free(j);
		return st;
	}
	*out = j;
	return MLC_OK;
}

mlc_entry_fn mlc_jit_entry(mlc_jit *j, mlc_entry e)
{
	return j && e >= 0 && e < MLC_ENTRY_COUNT ? j->entry[e] : NULL;
}

void mlc_jit_free(mlc_jit *j)
{
	if (!j)
		return;
	if (j->lljit)
		LLVMConsumeError(LLVMOrcDisposeLLJIT(j->lljit));
	free(j);
}
