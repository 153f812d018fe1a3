<?php

namespace Fpmd\Runtime;

use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\Runtime\RunnerInterface;
use Symfony\Component\Runtime\SymfonyRuntime;

/**
 * Symfony's runtime, for fpmd: in a pool with php.worker the kernel boots
 * once and serves every request through fpmd_handle_request(); anywhere else
 * (a classic pool, the console) it is Symfony's own runtime, unchanged.
 *
 * Select it with APP_RUNTIME=Fpmd\Runtime\FpmdRuntime (env[] in the pool), or
 * as composer.json's extra.runtime.class.  Option fpmd_loop_max
 * (APP_RUNTIME_OPTIONS, or FPMD_LOOP_MAX in the environment): requests before
 * the worker script returns and its worker is replaced; 0, the default,
 * leaves that to the pool's pm.max_requests.
 */
class FpmdRuntime extends SymfonyRuntime
{
    private int $loopMax;

    public function __construct(array $options = [])
    {
        $this->loopMax = (int) ($options['fpmd_loop_max'] ?? $_SERVER['FPMD_LOOP_MAX'] ?? 0);
        parent::__construct($options);
    }

    public function getRunner(?object $application): RunnerInterface
    {
        if ($application instanceof HttpKernelInterface && \function_exists('fpmd_handle_request')
            && ($_SERVER['FPMD_WORKER'] ?? false)) {
            return new FpmdRunner($application, $this->loopMax);
        }

        return parent::getRunner($application);
    }
}
