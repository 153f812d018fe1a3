<?php
// What `composer install` would give this app, from Debian's packages instead
// (php-symfony-framework-bundle, -twig-bundle, -runtime, -yaml, php-twig).
require_once '/usr/share/php/Symfony/Bundle/FrameworkBundle/autoload.php';
require_once '/usr/share/php/Symfony/Bundle/TwigBundle/autoload.php';
require_once '/usr/share/php/Symfony/Component/Runtime/autoload.php';
require_once '/usr/share/php/Symfony/Component/Yaml/autoload.php';
require_once '/usr/share/php/Twig/autoload.php';

// composer.json's psr-4: App\ in src/, the fpmd runtime in runtime/
spl_autoload_register(static function (string $class): void {
    foreach (['App\\' => '/../src/', 'Fpmd\\Runtime\\' => '/../runtime/'] as $prefix => $dir) {
        if (strncmp($class, $prefix, strlen($prefix)) === 0) {
            $file = __DIR__.$dir.str_replace('\\', '/', substr($class, strlen($prefix))).'.php';
            if (is_file($file)) {
                require $file;
            }
            return;
        }
    }
});
