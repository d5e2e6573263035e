// framewire display shaders: expand packed RGB8 or BGR8 rows to an RGBA texture, and draw a frame texture.

// ---- expand: packed RGB8 or BGR8 bytes (a storage buffer of u32 words) -> rgba8unorm storage texture ----

@group(0) @binding(0) var<storage, read> rgb: array<u32>;
@group(0) @binding(1) var expanded: texture_storage_2d<rgba8unorm, write>;

fn byte_at(i: u32) -> u32 {
    return (rgb[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

// Pixel `id` of the frame: red at byte `r` of its three, blue at byte `b`.
fn expand(id: vec3<u32>, r: u32, b: u32) {
    let size = textureDimensions(expanded);
    if (id.x >= size.x || id.y >= size.y) {
        return;
    }
    let i = (id.y * size.x + id.x) * 3u;
    let c = vec3<f32>(f32(byte_at(i + r)), f32(byte_at(i + 1u)), f32(byte_at(i + b))) / 255.0;
    textureStore(expanded, vec2<i32>(id.xy), vec4<f32>(c, 1.0));
}

@compute @workgroup_size(8, 8)
fn expand_rgb(@builtin(global_invocation_id) id: vec3<u32>) {
    expand(id, 0u, 2u);
}

@compute @workgroup_size(8, 8)
fn expand_bgr(@builtin(global_invocation_id) id: vec3<u32>) {
    expand(id, 2u, 0u);
}

// ---- draw: one triangle covering the viewport, sampling the frame texture ----
// (bindings 2 and 3, so that no two globals of this module share a binding)

@group(0) @binding(2) var frame_tex: texture_2d<f32>;
@group(0) @binding(3) var frame_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> VertexOut {
    // (-1,-1), (3,-1), (-1,3): the viewport is covered, the rest is clipped.
    let x = f32(i32(i & 1u) * 4 - 1);
    let y = f32(i32(i >> 1u) * 4 - 1);
    var out: VertexOut;
    out.position = vec4<f32>(x, y, 0.0, 1.0);
    out.uv = vec2<f32>((x + 1.0) * 0.5, (1.0 - y) * 0.5);
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(frame_tex, frame_sampler, in.uv).rgb, 1.0);
}
