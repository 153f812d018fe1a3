<?php

namespace App\Controller;

use App\Catalog;
use Symfony\Bundle\FrameworkBundle\Controller\AbstractController;
use Symfony\Component\HttpFoundation\JsonResponse;
use Symfony\Component\HttpFoundation\Request;
use Symfony\Component\HttpFoundation\Response;

class PageController extends AbstractController
{
    public function __construct(private Catalog $catalog)
    {
    }

    /** A Twig page with a loop: what a product listing does. */
    public function page(Request $request): Response
    {
        $page = max(1, $request->query->getInt('page', 1));
        return $this->render('page.html.twig', [
            'title' => 'Catalogue',
            'page' => $page,
            'items' => $this->catalog->page($page, 50),
            'categories' => $this->catalog->categories(),
        ]);
    }

    /** A JSON API route. */
    public function items(Request $request): JsonResponse
    {
        $page = max(1, $request->query->getInt('page', 1));
        return $this->json([
            'page' => $page,
            'items' => $this->catalog->page($page, 20),
        ]);
    }

    /** What this process has served, for the tests: which requests share a booted app. */
    public function state(): JsonResponse
    {
        return $this->json([
            'pid' => getmypid(),
            'served' => $this->catalog->served(),
            'worker' => (bool) ($_SERVER['FPMD_WORKER'] ?? false),
        ]);
    }
}
