<?php

namespace Fpmd\Runtime;

use Symfony\Component\DependencyInjection\ContainerInterface;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpKernel\HttpKernelInterface;
use Symfony\Component\HttpKernel\KernelInterface;
use Symfony\Component\HttpKernel\TerminableInterface;
use Symfony\Component\Runtime\RunnerInterface;

/**
 * The worker loop: one booted kernel, one Request per handled request.
 * Symfony resets its resettable services between two handle() calls itself
 * (services_resetter); fpmd gives each request its own superglobals,
 * headers, output buffers, uploads and session.
 */
class FpmdRunner implements RunnerInterface
{
    public function __construct(private HttpKernelInterface $kernel, private int $loopMax = 0)
    {
    }

    public function run(): int
    {
        $kernel = $this->kernel;
        $handler = static function () use ($kernel): void {
            $request = Request::createFromGlobals();
            $response = $kernel->handle($request);
            $response->send();
            if ($kernel instanceof TerminableInterface) {
                $kernel->terminate($request, $response);
            }
        };

        // Booted, and its request-handling services built, before the first
        // request: with php.worker_boot = zygote every worker is a fork of
        // this state, so what is built here is built once for the pool.
        if ($kernel instanceof KernelInterface) {
            $kernel->boot();
            self::warm($kernel->getContainer());
        }
        // Opt-in: one request handled before the first real one (its answer
        // dropped), so the classes and templates it needs are loaded once, in
        // the zygote with worker_boot = zygote.  Only for a URI without side
        // effects: it really runs the application.
        if (($uri = $_SERVER['FPMD_WARMUP_URI'] ?? '') !== '') {
            $request = Request::create($uri);
            $response = $kernel->handle($request);
            if ($kernel instanceof TerminableInterface) {
                $kernel->terminate($request, $response);
            }
        }

        $loops = 0;
        do {
            $more = \fpmd_handle_request($handler);
            // Cycles the request left, collected while the worker goes on;
            // a worker about to exit (max_requests reached, a forked one
            // above all) would only write to pages it is about to drop.
            if ($more) {
                gc_collect_cycles();
            }
        } while ($more && ($this->loopMax <= 0 || ++$loops < $this->loopMax));

        return 0;
    }

    /** The services every request uses, built now (none of them runs application code). */
    private static function warm(ContainerInterface $container): void
    {
        foreach (['http_kernel', 'event_dispatcher', 'request_stack', 'twig'] as $id) {
            if ($container->has($id)) {
                $container->get($id);
            }
        }
        if ($container->has('router')) {
            $router = $container->get('router');
            $router->getMatcher();
            $router->getGenerator();
        }
    }
}
