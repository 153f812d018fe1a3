<?php
/*
 * The floor under php.worker_boot = zygote with pm.max_requests = 1, measured
 * the way issue 23 measured it: php-cli boots the example application once,
 * as FpmdRunner does in the zygote, then forks a child per request that
 * handles it and leaves as _exit() would (SIGKILL to itself: no PHP
 * shutdown), INFLIGHT children at a time.  No FastCGI, no process manager:
 * what fork, a request in a fresh fork of the booted application and its
 * exit cost on this machine.  Says "booted" once booted and waits for a
 * line on its standard input (so that the caller's CPU figure leaves the
 * boot out), then prints {"n": served, "bad": failed, "secs": s}.
 *
 *   php symfony-fork-floor.php APP_DIR URI SECONDS EXPECT INFLIGHT
 */
[, $app, $uri, $secs, $expect, $inflight] = $argv;
$_SERVER['APP_ENV'] = $_ENV['APP_ENV'] = 'prod';
$_SERVER['APP_DEBUG'] = $_ENV['APP_DEBUG'] = '0';
require $app . '/vendor/autoload.php';

$kernel = new App\Kernel('prod', false);
$kernel->boot();
$container = $kernel->getContainer();
foreach (['http_kernel', 'event_dispatcher', 'request_stack', 'twig'] as $id) {
    if ($container->has($id)) {
        $container->get($id);
    }
}
if ($container->has('router')) {
    $container->get('router')->getMatcher();
    $container->get('router')->getGenerator();
}
gc_collect_cycles();
gc_mem_caches();

$handle = static function () use ($kernel, $uri): string {
    $request = Symfony\Component\HttpFoundation\Request::create($uri);
    ob_start();
    $response = $kernel->handle($request);
    $response->send();
    $kernel->terminate($request, $response);
    return ob_get_clean();
};

echo "booted\n";
fgets(STDIN);
$start = hrtime(true);
$end = $start + (int)((float)$secs * 1e9);
$n = $bad = $live = 0;
for (;;) {
    while ($live < (int)$inflight && hrtime(true) < $end) {
        $pid = pcntl_fork();
        if ($pid === 0) {
            $ok = str_contains($handle(), $expect);
            posix_kill(posix_getpid(), $ok ? SIGKILL : SIGTERM);
        }
        if ($pid < 0) {
            break;
        }
        $live++;
    }
    if ($live === 0) {
        break;
    }
    pcntl_wait($status);
    $live--;
    if (pcntl_wifsignaled($status) && pcntl_wtermsig($status) === SIGKILL) {
        $n++;
    } else {
        $bad++;
    }
}
echo json_encode(['n' => $n, 'bad' => $bad, 'secs' => (hrtime(true) - $start) / 1e9]), "\n";
